#include "store/catalog.h"

namespace sluice::store {
namespace {

Result<std::optional<StoredContract>> oneContract(Db& db, const char* where, std::string_view key)
{
    auto stmt = db.prepare(std::string("SELECT ref, table_name, view_name, definition FROM contracts WHERE ") + where);
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, key);
    std::optional<StoredContract> found;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
        if (!found)
            found = StoredContract{std::string(row.columnText(0)), std::string(row.columnText(1)),
                                   std::string(row.columnText(2)), std::string(row.columnText(3))};
    }));
    return found;
}

}  // namespace

Result<std::optional<StoredContract>> contractByRef(Db& db, std::string_view ref)
{
    return oneContract(db, "ref = ?1", ref);
}

Result<std::optional<StoredContract>> contractByTable(Db& db, std::string_view name)
{
    return oneContract(db, "table_name = ?1 OR view_name = ?1", name);
}

Result<std::optional<StoredOutput>> outputByName(Db& db, std::string_view name)
{
    auto stmt = db.prepare("SELECT name, contract, table_name FROM outputs WHERE name = ?1 OR table_name = ?1");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, name);
    std::optional<StoredOutput> found;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
        if (!found)
            found = StoredOutput{std::string(row.columnText(0)), std::string(row.columnText(1)),
                                 std::string(row.columnText(2))};
    }));
    return found;
}

Result<std::vector<std::string>> derivedTables(Db& db)
{
    auto stmt = db.prepare("SELECT name FROM sluice_tables WHERE name LIKE 'derived\\_%' ESCAPE '\\' ORDER BY name");
    if (!stmt)
        return stmt.status();
    std::vector<std::string> tables;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) { tables.emplace_back(row.columnText(0)); }));
    return tables;
}

}  // namespace sluice::store
