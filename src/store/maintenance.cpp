#include "store/maintenance.h"

#include <algorithm>

#include "core/schema.h"

namespace sluice::store {
namespace {

Result<std::vector<std::string>> keyLinks(Db& db, const std::string& sql, const std::string& text, int64_t before)
{
    auto stmt = db.prepare(sql);
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, text).bind(2, before);
    std::vector<std::string> links;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
        links.emplace_back(row.columnText(0));
    }));
    return links;
}

Result<int64_t> deleteThroughBatch(Db& db, const std::string& table, int64_t batchId)
{
    auto stmt = db.prepare("DELETE FROM " + quoteIdent(table) + " WHERE batch_id <= ?");
    if (!stmt)
        return stmt.status();
    stmt->bind(1, batchId);
    SLUICE_RETURN_IF_ERROR(stmt->run());
    return db.changes();
}

}  // namespace

Result<int64_t> lastBatchBefore(Db& db, int64_t timeMs)
{
    auto stmt = db.prepare("SELECT id FROM batches WHERE committed_at < ? ORDER BY committed_at DESC LIMIT 1");
    if (!stmt)
        return stmt.status();
    stmt->bind(1, timeMs);
    auto row = stmt->step();
    if (!row)
        return row.status();
    return *row ? stmt->columnInt(0) : int64_t{0};
}

Result<MaintenanceReport> runMaintenance(Db& db, const MaintenancePlan& plan)
{
    MaintenanceReport report;
    auto txn = Txn::begin(db);
    if (!txn)
        return txn.status();

    std::vector<std::string> expired;
    int longest = 0;
    bool everyContractExpires = !plan.retention.empty();
    for (const RetentionRule& rule : plan.retention) {
        if (rule.days <= 0) {
            everyContractExpires = false;
            continue;
        }
        const int64_t retentionMs = int64_t{rule.days} * 86'400'000;
        longest = std::max(longest, rule.days);
        auto links = keyLinks(db, "SELECT key_link FROM keys WHERE kind = 'data' AND contract = ?1 AND created_at < ?2",
                              rule.contract, plan.nowMs - retentionMs);
        if (!links)
            return links.status();
        expired.insert(expired.end(), links->begin(), links->end());
        auto batch = lastBatchBefore(db, plan.nowMs - std::max<int64_t>(retentionMs - plan.keyLifetimeMs, 0));
        if (!batch)
            return batch.status();
        for (const std::string& table : rule.derivedTables) {
            if (!*batch)
                break;
            auto n = deleteThroughBatch(db, table, *batch);
            if (!n)
                return n.status();
            report.derivedRows += *n;
        }
    }
    if (everyContractExpires) {
        auto batch = lastBatchBefore(db, plan.nowMs - int64_t{longest} * 86'400'000);
        if (!batch)
            return batch.status();
        if (*batch) {
            auto n = deleteThroughBatch(db, "key_subjects", *batch);
            if (!n)
                return n.status();
            report.subjectLinks = *n;
        }
    }
    if (!expired.empty()) {
        ShredScope scope;
        scope.derivedRows = false;   // by age, above
        scope.subjectLinks = false;  // by age, above
        scope.deadLetters = false;   // dead letters are encrypted under day keys, not data keys
        auto shredded = shredKeys(db, expired, "retention", plan.nowMs, scope);
        if (!shredded)
            return shredded.status();
        report.shredded = std::move(*shredded);
    }

    const int64_t deadLetterCutoff = plan.nowMs - plan.deadLetterRetentionMs;
    auto prune = db.prepare("DELETE FROM rejects WHERE received_at < ?");
    if (!prune)
        return prune.status();
    prune->bind(1, deadLetterCutoff);
    SLUICE_RETURN_IF_ERROR(prune->run());
    report.deadLetters = db.changes();
    // A day key encrypts the copies received that day; once the day is past retention, so is it.
    auto dayKeys = keyLinks(db, "SELECT key_link FROM keys WHERE kind = ?1 AND expires_at < ?2", "dead_letter",
                            deadLetterCutoff);
    if (!dayKeys)
        return dayKeys.status();
    if (!dayKeys->empty()) {
        ShredScope scope;
        scope.derivedRows = false;
        scope.subjectLinks = false;
        auto shredded = shredKeys(db, *dayKeys, "retention", plan.nowMs, scope);
        if (!shredded)
            return shredded.status();
        report.shredded.keys += shredded->keys;
        report.shredded.keyLinks.insert(report.shredded.keyLinks.end(), shredded->keyLinks.begin(),
                                        shredded->keyLinks.end());
    }

    // Marks below a producer's dedupe window (its highest seq and dedupeWindow below it) can no
    // longer match a retry; a producer silent for
    // longer than the retention is forgotten whole. Both are range deletes on the primary key.
    auto idle = lastBatchBefore(db, plan.nowMs - plan.dedupeRetentionMs);
    if (!idle)
        return idle.status();
    auto producers = db.prepare("SELECT producer, high_seq, last_batch FROM producers");
    auto trim = db.prepare("DELETE FROM producer_marks WHERE producer = ? AND seq < ?");
    auto drop = db.prepare("DELETE FROM producers WHERE producer = ?");
    if (!producers || !trim || !drop)
        return (!producers ? producers.status() : !trim ? trim.status() : drop.status());
    std::vector<std::pair<std::string, int64_t>> toTrim;
    SLUICE_RETURN_IF_ERROR(producers->forEachRow([&](const Stmt& row) {
        const int64_t high = row.columnInt(1);
        const bool silent = row.columnInt(2) <= *idle;
        const int64_t below = silent ? INT64_MAX : high - static_cast<int64_t>(plan.dedupeWindow);
        if (below > 0)
            toTrim.emplace_back(std::string(row.columnText(0)), below);
    }));
    for (const auto& [producer, below] : toTrim) {
        trim->bindText(1, producer).bind(2, below);
        SLUICE_RETURN_IF_ERROR(trim->run());
        report.marks += db.changes();
        if (below == INT64_MAX) {
            drop->bindText(1, producer);
            SLUICE_RETURN_IF_ERROR(drop->run());
        }
    }

    SLUICE_RETURN_IF_ERROR(txn->commit());
    return report;
}

}  // namespace sluice::store
