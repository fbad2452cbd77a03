#include "batch/batcher.h"

namespace sluice::batch {

Batcher::Batcher(Limits limits, const Clock& clock, uint64_t firstBatchId, Sink sink)
    : limits_(limits), clock_(clock), nextId_(firstBatchId), sink_(std::move(sink))
{
}

void Batcher::add(Request&& request)
{
    const uint64_t events = request.events;
    const uint64_t bytes = request.payload.size();
    if (!empty() && (open_.events + events > limits_.maxEvents || open_.bytes + bytes > limits_.maxBytes))
        close(open_.events + events > limits_.maxEvents ? CloseReason::kEvents : CloseReason::kBytes);
    if (empty()) {
        open_.openedAtMs = request.receivedAtMs;
        open_.openedMonoNs = request.receivedMonoNs;
    }
    open_.events += events;
    open_.bytes += bytes;
    open_.requests.push_back(std::move(request));
    if (open_.events >= limits_.maxEvents)
        close(CloseReason::kEvents);
    else if (open_.bytes >= limits_.maxBytes)
        close(CloseReason::kBytes);
}

void Batcher::poll()
{
    if (!empty() && nanosUntilDeadline() == 0)
        close(CloseReason::kDelay);
}

void Batcher::flush()
{
    if (!empty())
        close(CloseReason::kDrain);
}

int64_t Batcher::nanosUntilDeadline() const
{
    if (empty())
        return -1;
    const int64_t deadline = open_.openedMonoNs + limits_.maxDelayMs * 1'000'000;
    const int64_t now = clock_.monoNs();
    return now >= deadline ? 0 : deadline - now;
}

void Batcher::close(CloseReason reason)
{
    Batch batch = std::move(open_);
    open_ = Batch();
    open_.requests.reserve(batch.requests.size());
    batch.id = nextId_++;
    batch.closeReason = reason;
    batch.closedAtMs = clock_.wallMs();
    batch.closedMonoNs = clock_.monoNs();
    sink_(std::move(batch));
}

}  // namespace sluice::batch
