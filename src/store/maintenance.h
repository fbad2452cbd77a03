// Periodic upkeep the writer thread runs between batches, in its own transactions:
// crypto-shredding of keys past their contract's retention, expiry of dead letters (and of the
// day keys their input copies are encrypted with), and pruning of producer marks that fell out
// of the dedupe window or belong to producers silent for too long.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/db.h"
#include "store/key_table.h"

namespace sluice::store {

struct MaintenancePlan {
    int64_t nowMs = 0;
    std::vector<std::pair<std::string, int>> retentionDays;  // contract ref -> days (0: keep)
    int64_t deadLetterRetentionMs = 7LL * 86'400'000;
    uint64_t dedupeWindow = 65536;
    int64_t dedupeRetentionMs = 7LL * 86'400'000;
};

struct MaintenanceReport {
    ShredReport shredded;     // keys past retention, with their derived rows
    int64_t deadLetters = 0;  // dead letters past retention
    int64_t marks = 0;        // producer marks pruned
};

Result<MaintenanceReport> runMaintenance(Db& db, const MaintenancePlan& plan);

}  // namespace sluice::store
