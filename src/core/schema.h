// A table some stage writes to, described as SQL text by the stage that knows its columns.
// store/ creates it (and checks that an existing table has the same layout), (re)creates its
// analyst view, and prepares the INSERT that binds `insertColumns` in order.
#pragma once

#include <string>
#include <vector>

namespace sluice {

struct TableDef {
    std::string name;
    std::string createSql;                 // CREATE TABLE IF NOT EXISTS ...
    std::vector<std::string> indexSql;     // CREATE INDEX IF NOT EXISTS ...
    std::vector<std::string> insertColumns;
    std::string viewName;                  // "" for none
    std::string viewSql;                   // CREATE VIEW [IF NOT EXISTS] viewName AS SELECT ...
};

// Double-quotes an SQL identifier.
inline std::string quoteIdent(const std::string& name)
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
