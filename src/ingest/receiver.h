// The ingest thread: owns the ZeroMQ sockets (PULL for fire-and-forget, ROUTER for
// acknowledged requests), turns messages into Requests, classifies acknowledged ones against the
// DedupeIndex, cuts them into batches with the Batcher, and sends the replies that the writer
// posts to the AckChannel once a batch is durable.
//
// Backpressure: when the pipeline's input queue is full the thread stops reading its sockets;
// ZeroMQ then queues up to the receive high-water mark per peer and TCP pushes back on
// producers. Nothing is dropped.
//
// Lifecycle: start() binds (and reports bind errors), requestDrain() from any thread stops
// reading and closes the open batch; the thread closes the batch queue, keeps sending replies
// until the AckChannel is closed and empty, then exits; join() waits for that.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "batch/batcher.h"
#include "core/batch.h"
#include "core/clock.h"
#include "core/queue.h"
#include "core/status.h"
#include "ingest/ack_channel.h"
#include "ingest/dedupe.h"

namespace sluice::ingest {

struct Options {
    std::vector<std::string> pull;
    std::vector<std::string> router;
    int receiveHwm = 32;
    int sendHwm = 1000;
    uint64_t maxMessageBytes = 1024 * 1024;
    uint64_t deadLetterInputBytes = 4096;   // a refused message keeps this much for its dead letter
    int64_t handshakeIvlMs = 30'000;
    int64_t heartbeatIvlMs = 10'000;
    int64_t heartbeatTimeoutMs = 30'000;
    int64_t dedupeRetentionMs = 7LL * 86'400'000;
    batch::Limits batch;
    // CURVE (ZeroMQ RFC 26) on every ingest socket when set: the daemon's 32-byte secret key, and
    // the 32-byte public keys of the producers let in. Every other client is refused by the ZAP
    // handler (RFC 27) that the ingest thread serves.
    std::string curveSecretKey;
    std::vector<std::string> curveClients;
};

struct IngestStats {
    std::atomic<uint64_t> messages{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> badRequests{0};
    std::atomic<uint64_t> oversized{0};
    std::atomic<uint64_t> duplicateRequests{0};
    std::atomic<uint64_t> staleRequests{0};
    std::atomic<uint64_t> repliesSent{0};
    std::atomic<uint64_t> repliesDropped{0};
    std::atomic<uint64_t> batchesClosed{0};
    std::atomic<int64_t> pausedNs{0};        // time spent not reading because the pipeline was full
    std::atomic<int64_t> busyNs{0};
    std::atomic<uint64_t> curveRefused{0};   // handshakes refused by the ZAP handler          // time spent outside poll: receiving, batching, replying
    // Where a request's latency goes, before and after the pipeline: the time from each
    // request's arrival to its batch's close, summed over the requests of closed batches; the
    // time from a batch being durable to its replies being sent, summed over the batches.
    std::atomic<int64_t> closeWaitNs{0};
    std::atomic<uint64_t> closedRequests{0};
    std::atomic<int64_t> replyWaitNs{0};
    std::atomic<uint64_t> repliedBatches{0};
};

class Receiver {
public:
    Receiver(Options options, const Clock& clock, DedupeIndex dedupe, uint64_t firstBatchId,
             BoundedQueue<Batch>& out, AckChannel& acks, IngestStats& stats);
    ~Receiver();
    Receiver(const Receiver&) = delete;
    Receiver& operator=(const Receiver&) = delete;

    // Called on every loop turn of the ingest thread (progress for the watchdog).
    void setHeartbeat(std::function<void()> beat);

    Status start();
    void requestDrain();
    void join();
    // Closes the open batch, if any, and returns once it is closed: everything read before the
    // call belongs to batches that end before anything read after it. A reload calls it after
    // handing the processor the new configuration (applied from the next batch), so that a
    // request sent after the reload is acknowledged never lands in a batch begun before it.
    // Any thread; waits for one turn of the ingest loop (at most about 100 ms), or returns at
    // once when the ingest thread is not running.
    void cutBatch();

    // The endpoints actually bound (tcp://...:0 resolves to the chosen port).
    std::vector<std::string> boundEndpoints() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::ingest
