// Reading dead letters back (the writer inserts them as part of batches, batch_writer.h).
#pragma once

#include <cstdint>
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

}  // namespace sluice::store
