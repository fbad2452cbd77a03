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

void printDemoReport(Db& db, std::ostream& out)
{
    struct Query {
        const char* title;
        const char* sql;
    };
    const Query queries[] = {
        {"Events per country (view acme_checkout_1_0_0; PII columns hold Tink ciphertexts)",
         "SELECT country, count(*) AS events, round(sum(total), 2) AS revenue FROM acme_checkout_1_0_0 "
         "GROUP BY country ORDER BY events DESC LIMIT 8"},
        {"What is stored for the PII fields",
         "SELECT session_id, customer_id, email, key_link FROM acme_checkout_1_0_0 LIMIT 3"},
        {"Derived output 'analytics' (consent [1,2]: decrypted, email masked with HMAC-SHA256)",
         "SELECT consent, customer_id, email, ip, country, total FROM analytics LIMIT 5"},
        {"Aggregation 'revenue_by_country' (1-minute windows; final once the watermark passed)",
         "SELECT window_start, country, count, round(sum_total, 2) AS sum_total, distinct_customer_id, final "
         "FROM revenue_by_country ORDER BY window_start DESC, count DESC LIMIT 10"},
        {"Dead letters by reason", "SELECT reason, count(*) AS events FROM dead_letters GROUP BY reason ORDER BY 2 DESC"},
        {"Batches (received = committed + duplicates + rejected, per batch)",
         "SELECT count(*) AS batches, sum(received) AS received, sum(committed) AS committed, "
         "sum(duplicates) AS duplicates, sum(rejected) AS rejected, "
         "sum(received != committed + duplicates + rejected) AS broken_batches, "
         "round(avg(committed_at - closed_at), 1) AS avg_commit_ms FROM batches"},
    };
    for (const Query& q : queries) {
        out << "\n" << q.title << "\n";
        Status s = printQuery(db, q.sql, out);
        if (!s)
            out << "  (" << s.message() << ")\n";
    }
}

}  // namespace sluice::store
