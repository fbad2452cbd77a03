#include "job/key_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "store/job_tables.h"

namespace sluice::job {

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
    options.cacheBytes = 2 << 20;  // keys are appended, and looked up by index
    // A process crash loses nothing at synchronous=NORMAL (WAL); sync() makes the store durable
    // before the job publishes outputs that need its keys.
    options.syncEveryCommit = false;
    // Its WAL is checkpointed (and the file fsynced) on a thread of its own, not in the commits of
    // the job's key stage.
    options.backgroundCheckpoints = true;
    auto writer = store::BatchWriter::open(options);
    if (!writer)
        return writer.status().withContext("key store " + path);
    ks->writer_ = std::move(*writer);
    ::chmod(path.c_str(), 0600);
    SLUICE_RETURN_IF_ERROR(transform::checkMasterKey(ks->writer_->db(), wrapper).withContext("key store " + path));
    SLUICE_RETURN_IF_ERROR(store::dropKeyLinkIndex(ks->writer_->db()));
    auto reader = store::KeyReader::open(path);
    if (!reader)
        return reader.status().withContext("key store " + path);
    ks->reader_ = std::move(*reader);
    return ks;
}

KeyStore::~KeyStore()
{
    reader_.reset();
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
    return Status::ok();
}

Status KeyStore::sync() { return store::checkpointFull(writer_->db()); }

}  // namespace sluice::job
