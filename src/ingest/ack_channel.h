// Outcomes of committed batches, travelling from the writer thread back to the ingest thread,
// which owns the sockets that must send the replies. Unbounded on purpose: it holds at most the
// outcomes of the batches in flight, which the pipeline's bounded queues already limit, and the
// writer must never block on it (the ingest thread may itself be waiting for the pipeline).
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "core/commit.h"

namespace sluice::ingest {

struct AckBatch {
    uint64_t batchId = 0;
    std::vector<RequestOutcome> outcomes;
    int64_t durableMonoNs = 0;  // when the batch became durable (monotonic clock); 0: unknown
};

class AckChannel {
public:
    AckChannel();
    ~AckChannel();
    AckChannel(const AckChannel&) = delete;
    AckChannel& operator=(const AckChannel&) = delete;

    // Any thread. Wakes the ingest thread.
    void push(AckBatch&& batch);
    // No more pushes will come (the writer has finished).
    void close();

    // Ingest thread: everything queued so far, and whether the channel is closed.
    std::vector<AckBatch> takeAll(bool* closed);
    // A file descriptor that is readable while something is queued (for zmq_poll).
    int fd() const { return fd_; }

private:
    void wake();
    int fd_ = -1;
    std::mutex mutex_;
    std::deque<AckBatch> queue_;
    bool closed_ = false;
};

}  // namespace sluice::ingest
