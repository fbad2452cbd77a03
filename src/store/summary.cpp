#include "store/summary.h"

namespace sluice::store {
namespace {

// Runs `sql` and calls `fn` per row; false when the query could not run.
template <typename Fn>
bool query(Db& db, const char* sql, Fn&& fn)
{
    auto stmt = db.prepare(sql);
    return stmt && stmt->forEachRow(fn).isOk();
}

}  // namespace

DatabaseSummary summarizeDatabase(Db& db)
{
    DatabaseSummary s;
    DatabaseSummary::Batches batches;
    if (query(db,
              "SELECT count(*), coalesce(sum(received), 0), coalesce(sum(committed), 0), coalesce(sum(rejected), 0), "
              "coalesce(sum(duplicates), 0), coalesce(sum(late), 0), max(committed_at) FROM batches",
              [&](const Stmt& row) {
                  batches = {row.columnInt(0), row.columnInt(1), row.columnInt(2), row.columnInt(3),
                             row.columnInt(4), row.columnInt(5),
                             row.columnIsNull(6) ? std::optional<int64_t>() : row.columnInt(6)};
              }))
        s.batches = batches;
    std::vector<std::pair<std::string, int64_t>> reasons;
    if (query(db, "SELECT reason, count(*) FROM rejects GROUP BY reason ORDER BY 2 DESC, 1",
              [&](const Stmt& row) { reasons.emplace_back(row.columnText(0), row.columnInt(1)); }))
        s.deadLettersByReason = std::move(reasons);
    DatabaseSummary::Latency latency;
    if (query(db,
              "SELECT avg(committed_at - opened_at), max(committed_at - opened_at), count(*) FROM "
              "(SELECT opened_at, committed_at FROM batches ORDER BY id DESC LIMIT 1000)",
              [&](const Stmt& row) { latency = {row.columnInt(2), row.columnDouble(0), row.columnInt(1)}; }))
        s.latency = latency;
    std::vector<std::pair<std::string, int64_t>> kinds;
    if (query(db, "SELECT kind, count(*) FROM keys GROUP BY kind ORDER BY kind",
              [&](const Stmt& row) { kinds.emplace_back(row.columnText(0), row.columnInt(1)); }))
        s.keysByKind = std::move(kinds);
    DatabaseSummary::Shredding shredding;
    if (query(db, "SELECT count(*), coalesce(sum(keys), 0) FROM shred_log",
              [&](const Stmt& row) { shredding = {row.columnInt(0), row.columnInt(1)}; }))
        s.shredding = shredding;
    DatabaseSummary::Producers producers;
    if (query(db, "SELECT count(DISTINCT producer), count(*) FROM producer_marks",
              [&](const Stmt& row) { producers = {row.columnInt(0), row.columnInt(1)}; }))
        s.producers = producers;
    return s;
}

}  // namespace sluice::store
