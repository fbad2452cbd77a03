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
    if (!empty() && (openEvents_ + events > limits_.maxEvents || openBytes_ + bytes > limits_.maxBytes))
        close(openEvents_ + events > limits_.maxEvents ? CloseReason::kEvents : CloseReason::kBytes);
    if (empty()) {
        opened_ = true;
        open_.id = nextId_++;
        open_.openedAtMs = request.receivedAtMs;
        open_.openedMonoNs = request.receivedMonoNs;
    }
    openEvents_ += events;
    openBytes_ += bytes;
    open_.events += events;
    open_.bytes += bytes;
    ++openRequests_;
    openReceivedNs_ += request.receivedMonoNs - open_.openedMonoNs;
    open_.requests.push_back(std::move(request));
    if (openEvents_ >= limits_.maxEvents)
        close(CloseReason::kEvents);
    else if (openBytes_ >= limits_.maxBytes)
        close(CloseReason::kBytes);
}

void Batcher::poll(int64_t earlyNs)
{
    if (!empty() && nanosUntilDeadline() <= earlyNs)
        close(CloseReason::kDelay);
}

void Batcher::flush(CloseReason reason)
{
    if (!empty())
        close(reason);
}

void Batcher::release()
{
    if (open_.requests.empty())
        return;
    Batch part;
    part.id = open_.id;
    part.first = !released_;
    part.final = false;
    part.openedAtMs = open_.openedAtMs;
    part.openedMonoNs = open_.openedMonoNs;
    part.requests = std::move(open_.requests);
    part.events = open_.events;
    part.bytes = open_.bytes;
    open_.requests.clear();
    open_.events = 0;
    open_.bytes = 0;
    released_ = true;
    sink_(std::move(part));
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
    batch.first = !released_;
    batch.final = true;
    batch.closeReason = reason;
    batch.closedAtMs = clock_.wallMs();
    batch.closedMonoNs = clock_.monoNs();
    batch.batchRequests = openRequests_;
    batch.closeWaitNs = static_cast<int64_t>(openRequests_) * (batch.closedMonoNs - batch.openedMonoNs) - openReceivedNs_;
    openRequests_ = 0;
    openReceivedNs_ = 0;
    opened_ = false;
    released_ = false;
    openEvents_ = 0;
    openBytes_ = 0;
    sink_(std::move(batch));
}

}  // namespace sluice::batch
