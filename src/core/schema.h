// A table some stage writes to, described as SQL text by the stage that knows its columns.
// store/ creates it (and checks that an existing table has the same layout), (re)creates its
// analyst view, and prepares the INSERT that binds `insertColumns` in order.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// How an existing table of an older layout becomes the current one (for example, columns a newer
// sluice needs, added with defaults). Only layouts listed here are accepted besides the current.
struct TableUpgrade {
    std::string fromCreateSql;            // the older layout, as recorded in sluice_tables
    std::vector<std::string> statements;  // ALTER TABLE ... ADD COLUMN ...
};

struct TableDef {
    std::string name;
    std::string createSql;                 // CREATE TABLE IF NOT EXISTS ...
    std::vector<std::string> indexSql;     // CREATE INDEX IF NOT EXISTS ...
    std::vector<std::string> insertColumns;
    // Per insert column, the cell of the stage's row it takes (a row may carry cells the table
    // does not store, e.g. a derived row's copy of its event's fields); empty: cell i for column i.
    std::vector<size_t> insertCells;
    std::string viewName;                  // "" for none
    std::string viewSql;                   // CREATE VIEW [IF NOT EXISTS] viewName AS SELECT ...
    std::vector<TableUpgrade> upgrades;
};

// Double-quotes an SQL identifier ("a\"b" -> "\"a\"\"b\"").
inline std::string quoteIdent(std::string_view name)
{
    std::string out = "\"";
    for (char c : name) {
        if (c == '"')
            out += '"';
        out += c;
    }
    out += '"';
    return out;
}

// SQL text of an ISO-8601 UTC timestamp for an epoch-millisecond column expression.
inline std::string isoSql(const std::string& expr)
{
    return "strftime('%Y-%m-%dT%H:%M:%fZ', (" + expr + ") / 1000.0, 'unixepoch')";
}

}  // namespace sluice
