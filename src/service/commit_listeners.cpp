#include "service/commit_listeners.h"

namespace sluice::service {

void AckListener::committed(const CommitInfo& info)
{
    // Batches without acknowledged requests too: the ingest thread learns which batches are
    // durable (batch.close_when_idle).
    acks_.push(ingest::AckBatch{info.batch.record.id, info.batch.outcomes,
                                info.batch.record.closedMonoNs + info.latencyNs});
}

}  // namespace sluice::service
