#include "transform/db_open_windows.h"

#include <vector>

#include "store/db.h"
#include "store/state.h"

namespace sluice::transform {

OpenWindowsReader databaseOpenWindows(std::string path)
{
    return [path = std::move(path)](aggregate::Aggregator& aggregator) -> Status {
        const std::string sql = aggregator.openWindowsQuery();
        if (sql.empty())
            return Status::ok();
        store::Db::Options options;
        options.readOnly = true;
        auto db = store::Db::open(path, options);
        if (!db)
            return db.status();
        auto exists = store::tableExists(*db, aggregator.table().tableName());
        if (!exists)
            return exists.status();
        if (!*exists)
            return Status::ok();
        auto stmt = db->prepare(sql);
        if (!stmt)
            return stmt.status();
        std::vector<Cell> cells;
        return stmt->forEachRow([&](const store::Stmt& row) -> Status {
            cells.clear();
            for (int i = 0; i < row.columnCount(); ++i)
                cells.push_back(row.columnCell(i));
            return aggregator.restoreOpenWindow(cells);
        });
    };
}

}  // namespace sluice::transform
