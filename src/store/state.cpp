#include "store/state.h"

namespace sluice::store {

Status forEachMark(Db& db, const std::function<void(MarkRow&&)>& fn)
{
    auto stmt = db.prepare("SELECT producer, seq, accepted, rejected FROM producer_marks ORDER BY producer, seq");
    if (!stmt)
        return stmt.status();
    return stmt->forEachRow([&](const Stmt& row) {
        MarkRow m;
        m.producer = std::string(row.columnText(0));
        m.seq = static_cast<uint64_t>(row.columnInt(1));
        m.accepted = static_cast<uint32_t>(row.columnInt(2));
        m.rejected = static_cast<uint32_t>(row.columnInt(3));
        fn(std::move(m));
    });
}

Result<bool> tableExists(Db& db, const std::string& name)
{
    auto stmt = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, name);
    auto row = stmt->step();
    if (!row)
        return row.status();
    return *row;
}

Result<std::vector<std::pair<std::string, int64_t>>> loadWatermarks(Db& db)
{
    auto stmt = db.prepare("SELECT contract, max_event_time FROM watermarks");
    if (!stmt)
        return stmt.status();
    std::vector<std::pair<std::string, int64_t>> out;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
        out.emplace_back(std::string(row.columnText(0)), row.columnInt(1));
    }));
    return out;
}

Result<std::optional<std::string>> getMeta(Db& db, const std::string& key)
{
    auto stmt = db.prepare("SELECT value FROM sluice_meta WHERE key = ?");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, key);
    auto row = stmt->step();
    if (!row)
        return row.status();
    if (!*row || stmt->columnIsNull(0))
        return std::optional<std::string>();
    return std::optional<std::string>(std::string(stmt->columnBlob(0)));
}

Status setMeta(Db& db, const std::string& key, std::string_view value)
{
    auto stmt = db.prepare("INSERT INTO sluice_meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, key).bindBlob(2, value);
    return stmt->run();
}

Result<MasterKeyCheck> readMasterKeyCheck(Db& db)
{
    MasterKeyCheck check;
    auto value = getMeta(db, kMasterKeyCheckMeta);
    if (!value)
        return value.status();
    check.value = std::move(*value);
    auto keys = db.queryInt("SELECT EXISTS (SELECT 1 FROM keys)");
    if (!keys)
        return keys.status();
    check.holdsKeys = keys->value_or(0) != 0;
    return check;
}

Status recordMasterKeyCheck(Db& db, std::string_view value)
{
    return setMeta(db, kMasterKeyCheckMeta, value);
}

Status quickCheck(Db& db)
{
    auto stmt = db.prepare("PRAGMA quick_check");
    if (!stmt)
        return stmt.status();
    std::string problems;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
        std::string_view line = row.columnText(0);
        if (line != "ok")
            problems += (problems.empty() ? "" : "; ") + std::string(line);
    }));
    if (!problems.empty())
        return Status::corruption("database integrity check failed: " + problems.substr(0, 500));
    return Status::ok();
}

}  // namespace sluice::store
