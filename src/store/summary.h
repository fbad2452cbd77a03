// A summary of what a database holds, for sluicectl status when the daemon is down. Each part
// is read on its own: a part whose query fails (a database from an older schema) is nullopt.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/db.h"

namespace sluice::store {

struct DatabaseSummary {
    struct Batches {
        int64_t batches = 0;
        int64_t received = 0;
        int64_t committed = 0;
        int64_t rejected = 0;
        int64_t duplicates = 0;
        int64_t late = 0;
        std::optional<int64_t> lastCommitMs;
    };
    struct Latency {              // batch open to commit, over the last 1000 batches
        int64_t batches = 0;
        double averageMs = 0;
        int64_t maxMs = 0;
    };
    struct Shredding {
        int64_t operations = 0;
        int64_t keys = 0;
    };
    struct Producers {
        int64_t producers = 0;    // acknowledged producers with marks
        int64_t marks = 0;
    };
    std::optional<Batches> batches;
    std::optional<std::vector<std::pair<std::string, int64_t>>> deadLettersByReason;  // most first
    std::optional<Latency> latency;
    std::optional<std::vector<std::pair<std::string, int64_t>>> keysByKind;
    std::optional<Shredding> shredding;
    std::optional<Producers> producers;
};

DatabaseSummary summarizeDatabase(Db& db);

}  // namespace sluice::store
