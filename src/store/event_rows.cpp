#include "store/event_rows.h"

#include "core/schema.h"
#include "core/value.h"

namespace sluice::store {

Status forEachEventRow(Db& db, const std::string& table, const std::optional<std::vector<std::string>>& keyLinks,
                       int64_t limit, const std::function<void(const Stmt&)>& fn)
{
    std::string sql = "SELECT * FROM " + quoteIdent(table);
    if (keyLinks)
        sql += " WHERE key_link IN (SELECT value FROM json_each(?1))";
    sql += " ORDER BY seq";
    if (limit > 0)
        sql += " LIMIT " + std::to_string(limit);
    auto stmt = db.prepare(sql);
    if (!stmt)
        return stmt.status().withContext("reading " + table);
    std::string links = "[";
    if (keyLinks) {
        for (size_t i = 0; i < keyLinks->size(); ++i) {
            if (i)
                links += ',';
            appendJsonString(links, (*keyLinks)[i]);
        }
        links += ']';
        stmt->bindText(1, links);
    }
    return stmt->forEachRow(fn).withContext("reading " + table);
}

}  // namespace sluice::store
