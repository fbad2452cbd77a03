#include "store/maintenance.h"

namespace sluice::store {
namespace {

Result<std::vector<std::string>> keyLinks(Db& db, const std::string& sql, const std::string& text, int64_t before)
{
    auto stmt = db.prepare(sql);
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, text).bind(2, before);
    std::vector<std::string> links;
    for (;;) {
        auto row = stmt->step();
        if (!row)
            return row.status();
        if (!*row)
            return links;
        links.emplace_back(stmt->columnText(0));
    }
}

}  // namespace

Result<MaintenanceReport> runMaintenance(Db& db, const MaintenancePlan& plan)
{
    MaintenanceReport report;
    auto txn = Txn::begin(db);
    if (!txn)
        return txn.status();

    std::vector<std::string> expired;
    for (const auto& [contract, days] : plan.retentionDays) {
        if (days <= 0)
            continue;
        auto links = keyLinks(db, "SELECT key_link FROM keys WHERE kind = 'data' AND contract = ?1 AND created_at < ?2",
                              contract, plan.nowMs - int64_t{days} * 86'400'000);
        if (!links)
            return links.status();
        expired.insert(expired.end(), links->begin(), links->end());
    }

    const int64_t deadLetterCutoff = plan.nowMs - plan.deadLetterRetentionMs;
    auto prune = db.prepare("DELETE FROM rejects WHERE received_at < ?");
    if (!prune)
        return prune.status();
    prune->bind(1, deadLetterCutoff);
    SLUICE_RETURN_IF_ERROR(prune->run());
    report.deadLetters = db.changes();
    // A day key encrypts copies received that day; once the day is past retention, so is the key.
    auto dayKeys = keyLinks(db, "SELECT key_link FROM keys WHERE kind = ?1 AND expires_at < ?2", "dead_letter",
                            deadLetterCutoff);
    if (!dayKeys)
        return dayKeys.status();
    expired.insert(expired.end(), dayKeys->begin(), dayKeys->end());

    if (!expired.empty()) {
        auto shredded = shredKeys(db, expired, "retention", plan.nowMs);
        if (!shredded)
            return shredded.status();
        report.shredded = std::move(*shredded);
    }

    auto marks = db.prepare(
        "DELETE FROM producer_marks AS m WHERE seq <= (SELECT max(seq) FROM producer_marks WHERE producer = m.producer) - ?1 "
        "OR producer IN (SELECT producer FROM producer_marks AS p JOIN batches AS b ON b.id = p.batch_id "
        "GROUP BY producer HAVING max(b.committed_at) < ?2)");
    if (!marks)
        return marks.status();
    marks->bind(1, static_cast<int64_t>(plan.dedupeWindow)).bind(2, plan.nowMs - plan.dedupeRetentionMs);
    SLUICE_RETURN_IF_ERROR(marks->run());
    report.marks = db.changes();

    SLUICE_RETURN_IF_ERROR(txn->commit());
    return report;
}

}  // namespace sluice::store
