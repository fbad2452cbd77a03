#include "store/job_tables.h"

#include "core/schema.h"

namespace sluice::store {
namespace {

// The used keys in the attached key store (job_used_keys has one column, rowid, so the keys'
// column names need no prefix).
constexpr const char* kUsedKeysJoin = " FROM key_store.keys k JOIN job_used_keys u ON k.id = u.rowid";
// What a job's SQLite target keeps of a key: all but its rowid and batch.
constexpr const char* kCopiedKeyColumns = "key_link, key_id, contract, wrapped, created_at, expires_at, kind, lookup";

}  // namespace

Status dropKeyLinkIndex(Db& keyStore) { return keyStore.exec("DROP INDEX IF EXISTS job_keys_link"); }

Result<UsedKeyList> UsedKeyList::open(Db& work)
{
    SLUICE_RETURN_IF_ERROR(work.exec("CREATE TABLE IF NOT EXISTS job_used_keys(rowid INTEGER PRIMARY KEY)"));
    auto insert = work.prepare("INSERT OR IGNORE INTO job_used_keys(rowid) VALUES(?)", true);
    if (!insert)
        return insert.status();
    UsedKeyList list;
    list.db_ = &work;
    list.insert_ = std::move(*insert);
    return list;
}

Result<bool> UsedKeyList::add(int64_t keyRowid)
{
    insert_.bind(1, keyRowid);
    SLUICE_RETURN_IF_ERROR(insert_.run());
    return db_->changes() == 1;
}

Status attachKeyStore(Db& work, const std::string& keyStorePath)
{
    auto attach = work.prepare("ATTACH DATABASE ? AS key_store");
    if (!attach)
        return attach.status();
    attach->bindText(1, keyStorePath);
    return attach->run();
}

Status detachKeyStore(Db& work) { return work.exec("DETACH DATABASE key_store"); }

Result<int64_t> countUsedKeys(Db& work)
{
    auto count = work.queryInt("SELECT count(*) FROM job_used_keys");
    if (!count)
        return count.status();
    return count->value_or(0);
}

Status adoptUsedKeys(Db& work, std::string_view checkpointMeta)
{
    auto txn = Txn::begin(work);
    if (!txn)
        return txn.status();
    SLUICE_RETURN_IF_ERROR(work.exec(std::string("INSERT INTO keys(") + kCopiedKeyColumns + ") SELECT " +
                                     kCopiedKeyColumns + kUsedKeysJoin + " ORDER BY k.id"));
    SLUICE_RETURN_IF_ERROR(work.exec("DROP TABLE job_used_keys"));
    // A run that resumed links the subjects of the keys it reads back again: each link once, the
    // first, as one run from the start writes it.
    SLUICE_RETURN_IF_ERROR(work.exec("DELETE FROM key_subjects WHERE rowid NOT IN "
                                     "(SELECT min(rowid) FROM key_subjects GROUP BY subject, key_link)"));
    auto forget = work.prepare("DELETE FROM sluice_meta WHERE key = ?");
    if (!forget)
        return forget.status();
    forget->bindText(1, checkpointMeta);
    SLUICE_RETURN_IF_ERROR(forget->run());
    forget = Stmt();
    return txn->commit();
}

Status markWindowsComplete(Db& db, const std::string& table)
{
    return db.exec("UPDATE " + quoteIdent(table) + " SET \"final\" = 1, \"complete\" = 1");
}

Status forEachWindowRow(Db& db, const std::string& view,
                        const std::function<void(const std::vector<std::string>& names)>& columns,
                        const std::function<void(const Stmt& row)>& row)
{
    auto stmt = db.prepare("SELECT * FROM " + quoteIdent(view) + " ORDER BY window_start_ms");
    if (!stmt)
        return stmt.status();
    std::vector<std::string> names;
    for (int c = 0; c < stmt->columnCount(); ++c)
        names.emplace_back(stmt->columnName(c));
    columns(names);
    return stmt->forEachRow([&](const Stmt& r) { row(r); });
}

}  // namespace sluice::store
