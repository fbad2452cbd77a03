#include "store/table_printer.h"

#include <algorithm>
#include <vector>

namespace sluice::store {

Status printQuery(Db& db, const std::string& sql, std::ostream& out, size_t maxWidth)
{
    auto stmt = db.prepare(sql);
    if (!stmt)
        return stmt.status();
    const int n = stmt->columnCount();
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> header;
    for (int i = 0; i < n; ++i)
        header.emplace_back(stmt->columnName(i));
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
        std::vector<std::string> cells;
        for (int i = 0; i < n; ++i) {
            if (row.columnIsNull(i)) {
                cells.emplace_back();
            } else if (row.columnIsBlob(i)) {
                std::string blob = "<";
                blob += std::to_string(row.columnBlob(i).size());
                blob += " bytes>";
                cells.push_back(std::move(blob));
            } else {
                std::string s(row.columnText(i));
                if (s.size() > maxWidth)
                    s = s.substr(0, maxWidth - 3) + "...";
                cells.push_back(std::move(s));
            }
        }
        rows.push_back(std::move(cells));
    }));
    std::vector<size_t> width(static_cast<size_t>(n), 0);
    for (int i = 0; i < n; ++i) {
        width[static_cast<size_t>(i)] = header[static_cast<size_t>(i)].size();
        for (const auto& r : rows)
            width[static_cast<size_t>(i)] = std::max(width[static_cast<size_t>(i)], r[static_cast<size_t>(i)].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
        out << "  ";
        for (int i = 0; i < n; ++i) {
            const std::string& c = cells[static_cast<size_t>(i)];
            out << c << std::string(width[static_cast<size_t>(i)] - c.size() + 2, ' ');
        }
        out << "\n";
    };
    line(header);
    std::vector<std::string> rule;
    for (size_t w : width)
        rule.emplace_back(w, '-');
    line(rule);
    for (const auto& r : rows)
        line(r);
    if (rows.empty())
        out << "  (no rows)\n";
    return Status::ok();
}

}  // namespace sluice::store
