#include "store/db.h"

#include <sqlite3.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "store/sqlite_error.h"

namespace sluice::store {
namespace {

// SQLite keeps allocation statistics (sqlite3_memory_used()), which sluice never reads, by
// taking a global mutex around every allocation: in the writer, with its many small ones, the
// lock and unlock were about 8% of its samples (perf, 1,000,000 keys). Turned off before the
// first connection; SQLite refuses the setting once it is initialized (a VFS registered
// earlier, as some tests do), and then nothing changes.
void configureSqliteOnce()
{
    static const int configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)configured;
}

}  // namespace

Result<Db> Db::open(const std::string& path, const Options& options)
{
    configureSqliteOnce();
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    flags |= options.readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (!options.readOnly && options.create)
        flags |= SQLITE_OPEN_CREATE;
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags, options.vfs);
    Db db(raw);  // owns the handle even when open failed
    if (rc != SQLITE_OK)
        return sqliteError(raw, rc, "cannot open database " + path);
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, options.busyTimeoutMs);
    db.busyTimeoutMs_ = options.busyTimeoutMs;
    std::string pragmas = "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-" +
                          std::to_string(options.cacheBytes / 1024) + ";";
    if (!options.readOnly) {
        // WAL lets analysts read while the daemon writes; FULL makes every commit durable before
        // it is acknowledged; secure_delete overwrites what is deleted (shredded keys).
        pragmas += std::string("PRAGMA journal_mode=") + (options.rollbackJournal ? "DELETE" : "WAL") +
                   "; PRAGMA synchronous=" +
                   (options.syncNever ? "OFF" : options.syncEveryCommit ? "FULL" : "NORMAL") + "; PRAGMA secure_delete=ON;";
    }
    SLUICE_RETURN_IF_ERROR(db.exec(pragmas).withContext(path));
    if (!options.readOnly) {
        auto mode = db.queryText("PRAGMA journal_mode");
        if (!mode)
            return mode.status();
        const char* want = options.rollbackJournal ? "delete" : "wal";
        if (!*mode || **mode != want)
            return Status::ioError(path + ": cannot switch the database to journal_mode " + want);
    }
    return db;
}

Db::Db(Db&& other) noexcept : db_(std::exchange(other.db_, nullptr)), busyTimeoutMs_(other.busyTimeoutMs_) {}

Db& Db::operator=(Db&& other) noexcept
{
    if (this != &other) {
        sqlite3_close_v2(db_);
        db_ = std::exchange(other.db_, nullptr);
        busyTimeoutMs_ = other.busyTimeoutMs_;
    }
    return *this;
}

Db::~Db()
{
    sqlite3_close_v2(db_);
}

Status Db::error(int rc, std::string_view context) const
{
    return sqliteError(db_, rc, context);
}

Status Db::exec(const std::string& sql)
{
    char* message = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc == SQLITE_OK)
        return Status::ok();
    std::string text = message ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    Status s = sqliteError(db_, rc, "executing SQL");
    return Status::error(s.code(), text + " (sqlite " + std::to_string(rc) + ") in: " + sql.substr(0, 200));
}

Result<Stmt> Db::prepare(std::string_view sql, bool persistent)
{
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                persistent ? SQLITE_PREPARE_PERSISTENT : 0, &raw, nullptr);
    Stmt stmt(db_, raw);
    if (rc != SQLITE_OK)
        return sqliteError(db_, rc, "preparing " + std::string(sql.substr(0, 200)));
    if (!raw)
        return Status::invalid("empty SQL statement");
    return stmt;
}

Result<std::optional<int64_t>> Db::queryInt(std::string_view sql)
{
    auto stmt = prepare(sql);
    if (!stmt)
        return stmt.status();
    auto row = stmt->step();
    if (!row)
        return row.status();
    if (!*row || stmt->columnIsNull(0))
        return std::optional<int64_t>();
    return std::optional<int64_t>(stmt->columnInt(0));
}

Result<std::optional<std::string>> Db::queryText(std::string_view sql)
{
    auto stmt = prepare(sql);
    if (!stmt)
        return stmt.status();
    auto row = stmt->step();
    if (!row)
        return row.status();
    if (!*row || stmt->columnIsNull(0))
        return std::optional<std::string>();
    return std::optional<std::string>(std::string(stmt->columnText(0)));
}

int64_t Db::lastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
int64_t Db::changes() const { return sqlite3_changes64(db_); }

Stmt::Stmt(Stmt&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), bindStatus_(std::move(other.bindStatus_))
{
}

Stmt& Stmt::operator=(Stmt&& other) noexcept
{
    if (this != &other) {
        sqlite3_finalize(stmt_);
        db_ = other.db_;
        stmt_ = std::exchange(other.stmt_, nullptr);
        bindStatus_ = std::move(other.bindStatus_);
    }
    return *this;
}

Stmt::~Stmt()
{
    sqlite3_finalize(stmt_);
}

void Stmt::checkBind(int rc, int index)
{
    if (rc != SQLITE_OK && bindStatus_.isOk())
        bindStatus_ = sqliteError(db_, rc, "binding parameter " + std::to_string(index));
}

Stmt& Stmt::bind(int index, int64_t value)
{
    checkBind(sqlite3_bind_int64(stmt_, index, value), index);
    return *this;
}

Stmt& Stmt::bindDouble(int index, double value)
{
    checkBind(sqlite3_bind_double(stmt_, index, value), index);
    return *this;
}

Stmt& Stmt::bindText(int index, std::string_view value)
{
    checkBind(sqlite3_bind_text64(stmt_, index, value.data() ? value.data() : "", value.size(), SQLITE_STATIC,
                                  SQLITE_UTF8),
              index);
    return *this;
}

Stmt& Stmt::bindBlob(int index, std::string_view value)
{
    checkBind(sqlite3_bind_blob64(stmt_, index, value.data() ? value.data() : "", value.size(), SQLITE_STATIC), index);
    return *this;
}

Stmt& Stmt::bindNull(int index)
{
    checkBind(sqlite3_bind_null(stmt_, index), index);
    return *this;
}

Stmt& Stmt::bindCell(int index, const Cell& cell)
{
    switch (cell.kind) {
    case Cell::Kind::kNull: return bindNull(index);
    case Cell::Kind::kInt: return bind(index, cell.i());
    case Cell::Kind::kReal: return bindDouble(index, cell.d());
    case Cell::Kind::kText: return bindText(index, cell.text());
    case Cell::Kind::kBlob: return bindBlob(index, cell.text());
    }
    return *this;
}

Result<bool> Stmt::step()
{
    if (!bindStatus_.isOk()) {
        Status s = std::exchange(bindStatus_, Status::ok());
        sqlite3_reset(stmt_);
        return s;
    }
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    Status s = sqliteError(db_, rc, std::string("running ") + sqlite3_sql(stmt_));
    sqlite3_reset(stmt_);
    return s;
}

Status Stmt::run()
{
    return forEachRow([](const Stmt&) {});
}

void Stmt::reset()
{
    sqlite3_reset(stmt_);
}

int64_t Stmt::columnInt(int index) const { return sqlite3_column_int64(stmt_, index); }
double Stmt::columnDouble(int index) const { return sqlite3_column_double(stmt_, index); }
bool Stmt::columnIsNull(int index) const { return sqlite3_column_type(stmt_, index) == SQLITE_NULL; }
bool Stmt::columnIsBlob(int index) const { return sqlite3_column_type(stmt_, index) == SQLITE_BLOB; }
bool Stmt::columnIsNumber(int index) const
{
    const int type = sqlite3_column_type(stmt_, index);
    return type == SQLITE_INTEGER || type == SQLITE_FLOAT;
}
int Stmt::columnCount() const { return sqlite3_column_count(stmt_); }
int Stmt::parameterCount() const { return sqlite3_bind_parameter_count(stmt_); }

Cell Stmt::columnCell(int index) const
{
    switch (sqlite3_column_type(stmt_, index)) {
    case SQLITE_INTEGER: return Cell::ofInt(columnInt(index));
    case SQLITE_FLOAT: return Cell::ofReal(columnDouble(index));
    case SQLITE_TEXT: return Cell::ofText(columnText(index));
    case SQLITE_BLOB: return Cell::ofBlob(columnBlob(index));
    default: return Cell::null();
    }
}
std::string_view Stmt::columnName(int index) const { return sqlite3_column_name(stmt_, index); }

std::string_view Stmt::columnText(int index) const
{
    const unsigned char* p = sqlite3_column_text(stmt_, index);
    int n = sqlite3_column_bytes(stmt_, index);
    return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string_view();
}

std::string_view Stmt::columnBlob(int index) const
{
    const void* p = sqlite3_column_blob(stmt_, index);
    int n = sqlite3_column_bytes(stmt_, index);
    return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string_view();
}

Status checkpointFull(Db& db)
{
    // A checkpoint another connection is running (a background Checkpointer's PASSIVE one) makes
    // this one return SQLITE_BUSY at once, or copy only part of the WAL: either way the commits
    // are not all in the synced file yet, so it is tried again until every frame is copied.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(db.busyTimeoutMs());
    for (;;) {
        int logFrames = -1, copied = -1;
        const int rc = sqlite3_wal_checkpoint_v2(db.handle(), nullptr, SQLITE_CHECKPOINT_FULL, &logFrames, &copied);
        if (rc == SQLITE_OK && copied == logFrames)
            return Status::ok();
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            return db.error(rc, "checkpointing the WAL");
        if (std::chrono::steady_clock::now() > deadline)
            return Status::error(StatusCode::kUnavailable,
                                 "the WAL could not be checkpointed whole within " +
                                     std::to_string(db.busyTimeoutMs()) + " ms (another connection holds it)");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

Status beginRead(Db& db) { return db.exec("BEGIN"); }
Status endRead(Db& db) { return db.exec("COMMIT"); }

Result<Txn> Txn::begin(Db& db)
{
    SLUICE_RETURN_IF_ERROR(db.exec("BEGIN IMMEDIATE"));
    return Txn(&db);
}

Txn::~Txn()
{
    if (db_ && !sqlite3_get_autocommit(db_->handle()))
        sqlite3_exec(db_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

Status Txn::commit()
{
    Db* db = std::exchange(db_, nullptr);
    int rc = sqlite3_exec(db->handle(), "COMMIT", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK)
        return Status::ok();
    Status s = sqliteError(db->handle(), rc, "COMMIT");
    // A failed COMMIT may leave the transaction open; never leave it half-done on this handle.
    if (!sqlite3_get_autocommit(db->handle()))
        sqlite3_exec(db->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
}

Result<Stmt*> StatementCache::get(Db& db, const std::string& sql)
{
    auto it = statements_.find(sql);
    if (it != statements_.end())
        return &it->second;
    auto stmt = db.prepare(sql, true);
    if (!stmt)
        return stmt.status();
    return &statements_.emplace(sql, std::move(*stmt)).first->second;
}

void StatementCache::resetAll()
{
    for (auto& [sql, stmt] : statements_)
        stmt.reset();
}

}  // namespace sluice::store
