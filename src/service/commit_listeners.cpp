#include "service/commit_listeners.h"

namespace sluice::service {

void AckListener::committed(const CommitInfo& info)
{
    if (!info.batch.outcomes.empty())
        acks_.push(ingest::AckBatch{info.batch.record.id, info.batch.outcomes});
}

}  // namespace sluice::service
