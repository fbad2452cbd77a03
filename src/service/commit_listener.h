// What happens after a commit: the writer stage tells every listener about each batch once it
// is durable, in commit order, on one thread (the writer's, or its sync thread when the WAL is
// synced apart from the COMMIT: writer_stage.h). The daemon's listeners: acknowledgements
// (outcomes to the ingest thread), key notices (the processor may now evict the batch's keys and
// must forget keys shredded elsewhere), metrics, and exporters (woken to read what was
// committed from the database on their own threads).
//
// Listeners run on the writer's critical path: they must be quick, must not block on other
// pipeline threads and must not throw. Anything slow is handed to a thread of the listener's own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/commit.h"
#include "store/batch_writer.h"

namespace sluice::service {

struct CommitInfo {
    const WriteBatch& batch;  // committed; its keys carry their rowids
    // Key links another process shredded since the previous batch (this batch's derived rows
    // under them were dropped): no new event may use them.
    const std::vector<std::string>& shreddedElsewhere;
    store::CommitTiming timing;
    int64_t latencyNs = 0;  // from the batch closing to the end of its commit
};

class CommitListener {
public:
    virtual ~CommitListener() = default;
    virtual void committed(const CommitInfo& info) = 0;
    // Maintenance shredded these keys (retention), in a transaction of its own that committed.
    virtual void shreddedByRetention(const std::vector<std::string>& keyLinks) { (void)keyLinks; }
    // The writer stopped (its input drained, or a fault): nothing more will be committed.
    virtual void writerStopped() {}
};

}  // namespace sluice::service
