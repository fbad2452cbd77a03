// Thin RAII wrappers over SQLite: Db owns a connection, Stmt a prepared statement, Txn a
// BEGIN IMMEDIATE transaction. A Db and its Stmts belong to one thread. Declare a Db before
// the Stmts made from it: statements must be finalized first.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "core/commit.h"
#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sluice::store {

class Stmt;

class Db {
public:
    struct Options {
        bool readOnly = false;
        bool create = true;
        int busyTimeoutMs = 30'000;
        int64_t cacheBytes = 8 * 1024 * 1024;
        const char* vfs = nullptr;  // nullptr: the default VFS
        // false: synchronous=NORMAL instead of FULL. In WAL mode a crash of the process still
        // loses nothing; a crash of the machine may lose the last commits until checkpointFull().
        bool syncEveryCommit = true;
        // synchronous=OFF (over syncEveryCommit): neither commits nor checkpoints fsync anything,
        // so the file survives a crash of the process but not of the machine. For a batch job's
        // own files, which it resumes only on the same boot (docs/jobs.md, "Crash safety").
        bool syncNever = false;
        // A rollback journal (journal_mode=DELETE) instead of WAL: for a file nobody reads while it
        // is written (a batch job's SQLite target until it publishes it). Needs no other
        // connection to the file.
        bool rollbackJournal = false;
    };

    // Opens `path`, turning on WAL and synchronous=FULL (writers; see syncEveryCommit), extended
    // result codes, a busy timeout, foreign keys off, secure_delete on (so deleted key material is
    // overwritten).
    static Result<Db> open(const std::string& path, const Options& options);

    Db() = default;
    Db(Db&& other) noexcept;
    Db& operator=(Db&& other) noexcept;
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;
    ~Db();

    sqlite3* handle() const { return db_; }
    int busyTimeoutMs() const { return busyTimeoutMs_; }
    explicit operator bool() const { return db_ != nullptr; }

    Status exec(const std::string& sql);
    Result<Stmt> prepare(std::string_view sql, bool persistent = false);
    // The first column of the first row, or nullopt when there is no row / it is NULL.
    Result<std::optional<int64_t>> queryInt(std::string_view sql);
    Result<std::optional<std::string>> queryText(std::string_view sql);
    int64_t lastInsertRowid() const;
    int64_t changes() const;
    Status error(int rc, std::string_view context) const;

private:
    explicit Db(sqlite3* db) : db_(db) {}
    sqlite3* db_ = nullptr;
    int busyTimeoutMs_ = 0;
};

class Stmt {
public:
    Stmt() = default;
    Stmt(Stmt&& other) noexcept;
    Stmt& operator=(Stmt&& other) noexcept;
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    ~Stmt();

    explicit operator bool() const { return stmt_ != nullptr; }

    // Parameters are numbered from 1. Text and blobs are NOT copied: they must outlive step().
    Stmt& bind(int index, int64_t value);
    Stmt& bindDouble(int index, double value);
    Stmt& bindText(int index, std::string_view value);
    Stmt& bindBlob(int index, std::string_view value);
    Stmt& bindNull(int index);
    Stmt& bindCell(int index, const Cell& cell);

    // Steps once: true when a row is ready, false when done.
    Result<bool> step();
    // Steps through every row, calling `fn(const Stmt&)` with the statement positioned on it,
    // then resets. `fn` returns void, or a Status: an error stops the loop and is returned.
    template <typename Fn>
    Status forEachRow(Fn&& fn);
    // Steps to completion and resets: for statements that return no rows.
    Status run();
    void reset();

    int64_t columnInt(int index) const;
    double columnDouble(int index) const;
    std::string_view columnText(int index) const;
    std::string_view columnBlob(int index) const;
    bool columnIsNull(int index) const;
    bool columnIsBlob(int index) const;
    // The value with its SQLite type; text and blobs point into the statement (valid until the
    // next step or reset).
    Cell columnCell(int index) const;
    bool columnIsNumber(int index) const;  // INTEGER or REAL
    int columnCount() const;
    // The largest parameter index the statement uses (?NNN counts as NNN).
    int parameterCount() const;
    std::string_view columnName(int index) const;

    Status bindError() const { return bindStatus_; }

private:
    friend class Db;
    Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
    void checkBind(int rc, int index);

    sqlite3* db_ = nullptr;
    sqlite3_stmt* stmt_ = nullptr;
    Status bindStatus_;
};

template <typename Fn>
Status Stmt::forEachRow(Fn&& fn)
{
    for (;;) {
        auto row = step();
        if (!row)
            return row.status();
        if (!*row)
            break;
        if constexpr (std::is_same_v<std::invoke_result_t<Fn&, const Stmt&>, Status>) {
            Status s = fn(static_cast<const Stmt&>(*this));
            if (!s) {
                reset();
                return s;
            }
        } else {
            fn(static_cast<const Stmt&>(*this));
        }
    }
    reset();
    return Status::ok();
}

// Copies the whole WAL into the database file and syncs it (wal_checkpoint(FULL)): what was
// committed at synchronous=NORMAL is durable once this returns.
Status checkpointFull(Db& db);

// A read transaction (BEGIN ... COMMIT, deferred): the reads between see one snapshot and share
// one lock, instead of one each.
Status beginRead(Db& db);
Status endRead(Db& db);

// BEGIN IMMEDIATE on creation; rolls back on destruction unless committed.
class Txn {
public:
    static Result<Txn> begin(Db& db);
    Txn(Txn&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
    Txn& operator=(Txn&&) = delete;
    Txn(const Txn&) = delete;
    ~Txn();

    Status commit();

private:
    explicit Txn(Db* db) : db_(db) {}
    Db* db_;
};

// Statements prepared once per SQL text (persistent) and kept with the connection they were
// prepared on, for readers that run the same few queries many times.
class StatementCache {
public:
    // The statement for `sql` on `db`, prepared on first use. The cache must be used with one
    // connection only.
    Result<Stmt*> get(Db& db, const std::string& sql);
    // Ends the current run of every statement (a reader's snapshot is released with them).
    void resetAll();
    void clear() { statements_.clear(); }

private:
    std::unordered_map<std::string, Stmt> statements_;
};

}  // namespace sluice::store
