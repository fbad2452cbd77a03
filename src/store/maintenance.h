// Periodic upkeep the writer thread runs between batches, in its own transaction:
//
// * retention: data keys created more than a contract's retention_days ago are shredded; the
//   derived rows (plaintext) of that contract's outputs are deleted once they are older than
//   retention minus the key lifetime, so that none outlives the key it was decrypted with (a key
//   encrypts events for `lifetime` after its creation); subject links older than the longest
//   retention are deleted. Both deletions go by batch, along indexes that only grow at their
//   end, so upkeep never scans a large table.
// * dead letters older than their retention, with the day keys their input copies use.
// * producer marks that fell out of the dedupe window, or of producers silent for too long.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/db.h"
#include "store/key_table.h"

namespace sluice::store {

struct RetentionRule {
    std::string contract;
    int days = 0;                            // 0: keep keys for ever
    std::vector<std::string> derivedTables;  // of the contract's outputs
};

struct MaintenancePlan {
    int64_t nowMs = 0;
    int64_t keyLifetimeMs = 86'400'000;
    std::vector<RetentionRule> retention;
    int64_t deadLetterRetentionMs = 7LL * 86'400'000;
    uint64_t dedupeWindow = 65536;  // marks kept: each producer's highest seq and this many below
    int64_t dedupeRetentionMs = 7LL * 86'400'000;
};

struct MaintenanceReport {
    ShredReport shredded;        // keys past retention
    int64_t derivedRows = 0;     // derived rows past retention
    int64_t subjectLinks = 0;
    int64_t deadLetters = 0;     // dead letters past retention
    int64_t marks = 0;           // producer marks pruned
};

Result<MaintenanceReport> runMaintenance(Db& db, const MaintenancePlan& plan);

// The last batch committed before `timeMs` (0 when none).
Result<int64_t> lastBatchBefore(Db& db, int64_t timeMs);

}  // namespace sluice::store
