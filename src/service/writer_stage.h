// The writer thread: takes WriteBatches in order, commits each in one transaction, then posts
// the batch's outcomes to the AckChannel (the ingest thread replies to producers) and tells the
// processor what is durable. A failed commit is never acknowledged: the daemon logs why and
// exits at once (systemd restarts it; producers retry).
//
// Between batches, once a minute, it runs maintenance (retention, dead-letter expiry, mark
// pruning) on the same connection.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/commit.h"
#include "core/queue.h"
#include "ingest/ack_channel.h"
#include "service/processor.h"
#include "store/batch_writer.h"
#include "store/maintenance.h"

namespace sluice::service {

struct WriterStats {
    std::atomic<uint64_t> batches{0};
    std::atomic<uint64_t> events{0};
    std::atomic<uint64_t> rejected{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> writeUs{0};
    std::atomic<uint64_t> commitUs{0};
    std::atomic<int64_t> lastCommitMs{0};
    std::atomic<uint64_t> keysShredded{0};
    std::atomic<uint64_t> derivedRowsShredded{0};
    // Per committed batch, for histograms (set by the observer).
    std::function<void(const WriteBatch&, const store::CommitTiming&, int64_t latencyNs)> observe;
};

class WriterStage {
public:
    struct Options {
        std::string stallFile;  // testing: stall before committing while this file exists
        PipelinePtr pipeline;   // for retention; replaced by the schema changes batches carry
        int64_t keyLifetimeMs = 86'400'000;
        int64_t deadLetterRetentionMs = 7LL * 86'400'000;
        uint64_t dedupeWindow = 65536;
        int64_t dedupeRetentionMs = 7LL * 86'400'000;
        int64_t maintenanceEveryMs = 60'000;
    };

    WriterStage(Options options, store::BatchWriter& writer, const Clock& clock, BoundedQueue<WriteBatch>& in,
                ingest::AckChannel& acks, Processor& processor, WriterStats& stats);
    ~WriterStage();

    // Progress beats; busy() marks a commit in progress (watchdog).
    void setHeartbeat(std::function<void()> beat, std::function<void()> busy);
    void start();
    void join();

private:
    void run();
    void commit(WriteBatch& batch);
    void maintain();

    Options options_;
    store::BatchWriter& writer_;
    const Clock& clock_;
    BoundedQueue<WriteBatch>& in_;
    ingest::AckChannel& acks_;
    Processor& processor_;
    WriterStats& stats_;
    std::function<void()> beat_;
    std::function<void()> busy_;
    std::thread thread_;
    int64_t lastMaintenanceMs_ = 0;
};

}  // namespace sluice::service
