#include "store/key_table.h"

#include <sqlite3.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "core/schema.h"
#include "store/catalog.h"

namespace sluice::store {
namespace {

std::string_view digestBytes(const Digest& d)
{
    return {reinterpret_cast<const char*>(d.data()), d.size()};
}

std::string linksText(const std::vector<std::string>& links)
{
    std::string out;
    for (const std::string& l : links) {
        out += l;
        out += '\n';
    }
    return out;
}

std::string linksJson(const std::vector<std::string>& links)
{
    std::string out = "[";
    for (size_t i = 0; i < links.size(); ++i) {
        out += i ? ",\"" : "\"";
        out += links[i];  // UUIDs: nothing to escape
        out += '"';
    }
    return out + "]";
}

// Calls `fn` with each (lookup, id, expires_at) row of `sql`, a query of the keys table with two
// parameters: an expiry instant and a kind.
Status visitKeys(Db& db, const char* sql, int64_t expiresAtMs, std::string_view kind,
                 const std::function<void(const Digest&, int64_t, int64_t)>& fn)
{
    auto stmt = db.prepare(sql);
    if (!stmt)
        return stmt.status();
    stmt->bind(1, expiresAtMs).bindText(2, kind);
    return stmt->forEachRow([&](const Stmt& row) -> Status {
        std::string_view bytes = row.columnBlob(0);
        Digest lookup{};
        if (bytes.size() != lookup.size())
            return Status::corruption("key " + std::to_string(row.columnInt(1)) + " has a malformed lookup hash");
        std::memcpy(lookup.data(), bytes.data(), bytes.size());
        fn(lookup, row.columnInt(1), row.columnInt(2));
        return Status::ok();
    });
}

}  // namespace

StoredKey readStoredKey(const Stmt& s)
{
    StoredKey k;
    k.rowid = s.columnInt(0);
    k.keyLink = std::string(s.columnText(1));
    k.keyId = static_cast<uint32_t>(s.columnInt(2));
    k.kind = std::string(s.columnText(3));
    k.contract = std::string(s.columnText(4));
    k.wrapped = std::string(s.columnBlob(5));
    k.createdAtMs = s.columnInt(6);
    k.expiresAtMs = s.columnInt(7);
    std::string_view lookup = s.columnBlob(8);
    if (lookup.size() == k.lookup.size())
        std::memcpy(k.lookup.data(), lookup.data(), lookup.size());
    return k;
}

Result<KeyReader> KeyReader::open(const std::string& path)
{
    Db::Options options;
    options.readOnly = true;
    options.cacheBytes = 256 * 1024;  // reads one key by rowid now and then
    auto db = Db::open(path, options);
    if (!db)
        return db.status();
    KeyReader reader;
    reader.db_ = std::move(*db);
    auto stmt = reader.db_.prepare(std::string("SELECT ") + kStoredKeyColumns + " FROM keys WHERE id = ?", true);
    if (!stmt)
        return stmt.status();
    reader.byRowid_ = std::move(*stmt);
    return reader;
}

Status KeyReader::forEachActive(std::string_view kind, int64_t nowMs,
                                const std::function<void(const Digest&, int64_t, int64_t)>& fn)
{
    return visitKeys(db_, "SELECT lookup, id, expires_at FROM keys WHERE expires_at > ? AND kind = ? ORDER BY expires_at",
                     nowMs, kind, fn);
}

Status KeyReader::forEachExpiringAt(std::string_view kind, int64_t expiresAtMs,
                                    const std::function<void(const Digest&, int64_t, int64_t)>& fn)
{
    return visitKeys(db_, "SELECT lookup, id, expires_at FROM keys WHERE expires_at = ? AND kind = ? ORDER BY id",
                     expiresAtMs, kind, fn);
}

Status KeyReader::beginLookups() { return beginRead(db_); }
Status KeyReader::endLookups() { return endRead(db_); }

Result<std::optional<StoredKey>> KeyReader::byRowid(int64_t rowid)
{
    byRowid_.bind(1, rowid);
    auto row = byRowid_.step();
    if (!row)
        return row.status();
    std::optional<StoredKey> key;
    if (*row)
        key = readStoredKey(byRowid_);
    byRowid_.reset();
    return key;
}

Result<std::vector<StoredKey>> findKeys(Db& db, const KeyFilter& filter)
{
    std::string sql = std::string("SELECT ") + kStoredKeyColumns + " FROM keys WHERE kind = ?1";
    if (!filter.keyLink.empty())
        sql += " AND key_link = ?2";
    if (filter.subject)
        sql += " AND key_link IN (SELECT key_link FROM key_subjects WHERE subject = ?3)";
    if (filter.createdFromMs)
        sql += " AND created_at >= ?4";
    if (filter.createdToMs)
        sql += " AND created_at < ?5";
    sql += " ORDER BY created_at, key_link";
    auto stmt = db.prepare(sql);
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, filter.kind);
    if (!filter.keyLink.empty())
        stmt->bindText(2, filter.keyLink);
    if (filter.subject)
        stmt->bindBlob(3, digestBytes(*filter.subject));
    if (filter.createdFromMs)
        stmt->bind(4, filter.createdFromMs);
    if (filter.createdToMs)
        stmt->bind(5, filter.createdToMs);
    std::vector<StoredKey> keys;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
        keys.push_back(readStoredKey(row));
    }));
    return keys;
}

Result<std::optional<StoredKey>> keyByLink(Db& db, std::string_view keyLink)
{
    auto stmt = db.prepare(std::string("SELECT ") + kStoredKeyColumns + " FROM keys WHERE key_link = ?");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, keyLink);
    auto row = stmt->step();
    if (!row)
        return row.status();
    if (!*row)
        return std::optional<StoredKey>();
    return std::optional<StoredKey>(readStoredKey(*stmt));
}

Result<std::vector<std::string>> subjectKeyLinks(Db& db, const Digest& subject)
{
    auto stmt = db.prepare("SELECT key_link FROM key_subjects WHERE subject = ?");
    if (!stmt)
        return stmt.status();
    stmt->bindBlob(1, digestBytes(subject));
    std::vector<std::string> links;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) { links.emplace_back(row.columnText(0)); }));
    return links;
}

Status forEachKeyId(Db& db, const std::function<void(uint32_t keyId, std::string_view keyLink)>& fn)
{
    auto stmt = db.prepare("SELECT key_id, key_link FROM keys ORDER BY created_at");
    if (!stmt)
        return stmt.status();
    return stmt->forEachRow(
        [&](const Stmt& row) { fn(static_cast<uint32_t>(row.columnInt(0)), row.columnText(1)); });
}

Result<std::optional<ShredRecord>> lastShredOf(Db& db, std::string_view keyLink)
{
    auto stmt = db.prepare("SELECT at, cause FROM shred_log WHERE instr(key_links, ?) > 0 ORDER BY id DESC LIMIT 1");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, keyLink);
    auto row = stmt->step();
    if (!row)
        return row.status();
    if (!*row)
        return std::optional<ShredRecord>();
    ShredRecord record{stmt->columnInt(0), std::string(stmt->columnText(1))};
    stmt->reset();
    return std::optional<ShredRecord>(std::move(record));
}

Result<ShredReport> shredKeys(Db& db, const std::vector<std::string>& keyLinks, std::string_view cause, int64_t nowMs,
                              const ShredScope& scope)
{
    ShredReport report;
    if (keyLinks.empty())
        return report;
    const std::string json = linksJson(keyLinks);
    auto run = [&](const std::string& sql, int64_t* count) -> Status {
        auto stmt = db.prepare(sql);
        if (!stmt)
            return stmt.status();
        stmt->bindText(1, json);
        SLUICE_RETURN_IF_ERROR(stmt->run());
        if (count)
            *count += db.changes();
        return Status::ok();
    };
    const std::string in = " IN (SELECT value FROM json_each(?1))";

    if (scope.derivedRows) {
        // Derived tables hold plaintext decrypted under these keys.
        auto derived = derivedTables(db);
        if (!derived)
            return derived.status();
        for (const std::string& t : *derived)
            SLUICE_RETURN_IF_ERROR(run("DELETE FROM " + quoteIdent(t) + " WHERE key_link" + in, &report.derivedRows));
    }
    if (scope.deadLetters)
        SLUICE_RETURN_IF_ERROR(run("DELETE FROM rejects WHERE input_key_link" + in, &report.deadLetters));
    if (scope.subjectLinks)
        SLUICE_RETURN_IF_ERROR(run("DELETE FROM key_subjects WHERE key_link" + in, nullptr));
    SLUICE_RETURN_IF_ERROR(run("DELETE FROM keys WHERE key_link" + in, &report.keys));
    report.keyLinks = keyLinks;

    auto log = db.prepare("INSERT INTO shred_log(at, cause, keys, derived_rows, key_links) VALUES(?, ?, ?, ?, ?)");
    if (!log)
        return log.status();
    const std::string text = linksText(keyLinks);
    log->bind(1, nowMs).bindText(2, cause).bind(3, report.keys).bind(4, report.derivedRows).bindText(5, text);
    SLUICE_RETURN_IF_ERROR(log->run());
    return report;
}

Result<ShredReport> previewShred(Db& db, const std::vector<std::string>& keyLinks)
{
    ShredReport report;
    report.keyLinks = keyLinks;
    if (keyLinks.empty())
        return report;
    const std::string json = linksJson(keyLinks);
    auto count = [&](const std::string& sql, int64_t& into) -> Status {
        auto stmt = db.prepare(sql + " IN (SELECT value FROM json_each(?1))");
        if (!stmt)
            return stmt.status();
        stmt->bindText(1, json);
        return stmt->forEachRow([&](const Stmt& row) { into += row.columnInt(0); });
    };
    auto derived = derivedTables(db);
    if (!derived)
        return derived.status();
    for (const std::string& t : *derived)
        SLUICE_RETURN_IF_ERROR(count("SELECT count(*) FROM " + quoteIdent(t) + " WHERE key_link", report.derivedRows));
    SLUICE_RETURN_IF_ERROR(count("SELECT count(*) FROM rejects WHERE input_key_link", report.deadLetters));
    SLUICE_RETURN_IF_ERROR(count("SELECT count(*) FROM keys WHERE key_link", report.keys));
    return report;
}

Status checkpointTruncate(Db& db, int timeoutMs)
{
    // The connection's busy handler (the writer's waits up to 30 s) would wait inside each
    // attempt, whatever `timeoutMs` says; this loop does its own waiting instead.
    sqlite3_busy_handler(db.handle(), nullptr, nullptr);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    Status result;
    for (;;) {
        int logFrames = -1, checkpointed = -1;
        int rc = sqlite3_wal_checkpoint_v2(db.handle(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &logFrames, &checkpointed);
        if (rc == SQLITE_OK && logFrames == 0)
            break;
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
            result = db.error(rc, "checkpointing the WAL");
            break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            result = Status::error(StatusCode::kUnavailable,
                                   "the WAL could not be checkpointed and truncated within " +
                                       std::to_string(timeoutMs) + " ms (a long-running reader holds it); retry");
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    sqlite3_busy_timeout(db.handle(), db.busyTimeoutMs());
    return result;
}

}  // namespace sluice::store
