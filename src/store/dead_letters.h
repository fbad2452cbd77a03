// Reading dead letters back (the writer inserts them as part of batches, batch_writer.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/commit.h"
#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

// The per-event errors of the committed acknowledged request (producer, seq), in index order,
// read from its dead letters: what the reply to that request said, for the reply to a retry.
// At most `limit`. Dead letters past store.dead_letter_retention are deleted, and so missing here.
Result<std::vector<EventError>> requestErrors(Db& db, std::string_view producer, uint64_t seq, size_t limit);

// A dead letter as stored (the rejects table); optional columns are nullopt when NULL.
struct StoredDeadLetter {
    int64_t id = 0;
    int64_t batchId = 0;
    int64_t receivedAtMs = 0;
    std::optional<std::string> producer;
    std::optional<int64_t> seq;
    std::optional<int64_t> eventIndex;
    std::string reason;
    std::string message;
    std::optional<std::string> contract;
    std::optional<std::string> eventId;
    int64_t inputBytes = 0;
    std::optional<std::string> input;         // the capped copy, encrypted under inputKeyLink
    std::optional<std::string> inputKeyLink;
};

// Which dead letters forEachDeadLetter reads: "" and 0 mean any / all.
struct DeadLetterFilter {
    std::string reason;
    std::string contract;
    int64_t limit = 0;
};

// Calls `fn` with each dead letter matching `filter`, oldest first.
Status forEachDeadLetter(Db& db, const DeadLetterFilter& filter, const std::function<void(const StoredDeadLetter&)>& fn);

}  // namespace sluice::store
