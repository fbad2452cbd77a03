#include "job/key_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "store/state.h"

namespace sluice::job {

Status checkMasterKey(store::Db& db, const privacy::KeyWrapper& wrapper)
{
    auto stored = store::readMasterKeyCheck(db);
    if (!stored)
        return stored.status();
    SLUICE_RETURN_IF_ERROR(privacy::verifyMasterKey(wrapper, stored->value, stored->holdsKeys));
    if (stored->value)
        return Status::ok();
    auto made = wrapper.makeCheck();
    if (!made)
        return made.status();
    return store::recordMasterKeyCheck(db, *made);
}

Result<std::unique_ptr<KeyStore>> KeyStore::open(const std::string& path, const privacy::KeyWrapper& wrapper)
{
    std::unique_ptr<KeyStore> ks(new KeyStore());
    ks->path_ = path;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    if (ec)
        return Status::ioError("cannot create the key store directory for " + path + ": " + ec.message());
    const std::string lock = path + ".lock";
    ks->lockFd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ks->lockFd_ < 0)
        return Status::ioError("cannot open " + lock + ": " + std::strerror(errno));
    if (::flock(ks->lockFd_, LOCK_EX | LOCK_NB) != 0)
        return Status::error(StatusCode::kUnavailable,
                             "another job of this group is running (it holds " + lock + "); wait for it to finish");
    store::BatchWriter::Options options;
    options.path = path;
    auto writer = store::BatchWriter::open(options);
    if (!writer)
        return writer.status().withContext("key store " + path);
    ks->writer_ = std::move(*writer);
    ::chmod(path.c_str(), 0600);
    SLUICE_RETURN_IF_ERROR(checkMasterKey(ks->writer_->db(), wrapper).withContext("key store " + path));
    auto stmt = ks->writer_->db().prepare("SELECT id, key_link FROM keys WHERE kind = 'data'");
    if (!stmt)
        return stmt.status();
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow(
        [&](const store::Stmt& row) { ks->rowidOf_.emplace(std::string(row.columnText(1)), row.columnInt(0)); }));
    auto byRowid = ks->writer_->db().prepare(
        "SELECT key_link, key_id, kind, contract, lookup, wrapped, created_at, expires_at FROM keys WHERE id = ?", true);
    if (!byRowid)
        return byRowid.status();
    ks->byRowid_ = std::move(*byRowid);
    return ks;
}

KeyStore::~KeyStore()
{
    byRowid_ = store::Stmt();
    writer_.reset();
    if (lockFd_ >= 0)
        ::close(lockFd_);  // releases the lock
}

Status KeyStore::store(std::vector<KeyRecord>& keys, int64_t nowMs)
{
    if (keys.empty())
        return Status::ok();
    auto last = writer_->lastBatchId();
    if (!last)
        return last.status();
    WriteBatch wb;
    wb.record.id = *last + 1;
    wb.record.openedAtMs = wb.record.closedAtMs = nowMs;
    wb.record.keysCreated = static_cast<uint32_t>(keys.size());
    wb.keys = std::move(keys);
    std::vector<std::string> shredded;
    store::CommitTiming timing;
    Status s = writer_->commit(wb, shredded, timing);
    keys = std::move(wb.keys);
    if (!s)
        return s.withContext("storing keys in " + path_);
    for (const KeyRecord& k : keys)
        rowidOf_[k.keyLink] = k.rowid;
    return Status::ok();
}

Result<std::optional<KeyRecord>> KeyStore::find(const std::string& keyLink)
{
    auto it = rowidOf_.find(keyLink);
    if (it == rowidOf_.end())
        return std::optional<KeyRecord>();
    byRowid_.bind(1, it->second);
    auto row = byRowid_.step();
    if (!row) {
        byRowid_.reset();
        return row.status();
    }
    std::optional<KeyRecord> out;
    if (*row) {
        KeyRecord k;
        k.keyLink = std::string(byRowid_.columnText(0));
        k.keyId = static_cast<uint32_t>(byRowid_.columnInt(1));
        k.kind = std::string(byRowid_.columnText(2));
        k.contract = std::string(byRowid_.columnText(3));
        const std::string_view lookup = byRowid_.columnBlob(4);
        std::memcpy(k.lookup.data(), lookup.data(), std::min(lookup.size(), k.lookup.size()));
        k.wrapped = std::string(byRowid_.columnBlob(5));
        k.createdAtMs = byRowid_.columnInt(6);
        k.expiresAtMs = byRowid_.columnInt(7);
        k.rowid = it->second;
        out = std::move(k);
    }
    byRowid_.reset();
    return out;
}

}  // namespace sluice::job
