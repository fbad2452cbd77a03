// The writer thread: takes WriteBatches in order, commits each batch in one transaction (written
// in parts while the batch is still being transformed, when it comes in parts), then tells the
// CommitListeners (acknowledgements, key notices, metrics, exporters: commit_listener.h) once
// the batch is durable. A failed commit is never acknowledged: the thread closes its input
// queue, reports the Status through the fatal callback and stops; the owner shuts the daemon
// down (systemd restarts it; producers resend what was not acknowledged).
//
// With a WalSync (Options::walSync, the daemon) the COMMIT does not wait for the disk: a second
// thread (sluice-sync) fsyncs the WAL once for every commit that came back since its last sync
// and only then tells the listeners, in commit order, on its own thread. The writer meanwhile
// writes the next batch, so the disk's flush time (milliseconds on a virtual disk) is no longer
// added to every batch's writing. At most kSyncQueue committed batches wait for a sync; a
// failed sync is fatal like a failed commit, and nothing after it is announced.
//
// The listeners see the batch's last part, with the keys of all its parts. Between batches,
// once a minute, it runs maintenance (retention, dead-letter expiry, mark
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
#include "core/status.h"
#include "service/commit_listener.h"
#include "store/batch_writer.h"
#include "store/maintenance.h"
#include "store/wal_sync.h"

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
    // Where a batch's time goes after it closes, summed over `timedBatches`: from the close to
    // the processor finishing its tail, from there to the writer's COMMIT returning, from there
    // to the sync thread's fdatasync making it durable.
    std::atomic<int64_t> tailNs{0};
    std::atomic<int64_t> writeCommitNs{0};
    std::atomic<int64_t> syncNs{0};
    std::atomic<uint64_t> timedBatches{0};
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
        // Set: commits are made durable by this on the sync thread before any listener hears of
        // them (the BatchWriter then opens with syncEveryCommit = false). Null: COMMIT is durable itself.
        store::WalSync* walSync = nullptr;
    };

    WriterStage(Options options, store::BatchWriter& writer, const Clock& clock, BoundedQueue<WriteBatch>& in,
                WriterStats& stats);
    ~WriterStage();

    // Before start(): listeners are told in the order they were added. Not owned.
    void addListener(CommitListener& listener);
    // Progress beats; busy() marks a commit in progress (watchdog).
    void setHeartbeat(std::function<void()> beat, std::function<void()> busy);
    // Called once, on the writer thread, when it stops on a storage fault.
    void setFatal(std::function<void(const Status&)> fatal);
    void start();
    // Returns when the input queue is closed and drained, or after a fatal failure.
    void join();

private:
    // A commit (or retention's shredding) waiting for its sync. The batch keeps what the
    // listeners read (record, keys, outcomes); its rows are dropped.
    struct Committed {
        WriteBatch batch;
        std::vector<std::string> shredded;
        store::CommitTiming timing;
        bool retention = false;
        std::vector<std::string> retentionKeyLinks;
    };
    static constexpr size_t kSyncQueue = 4;

    void run();
    void syncLoop();
    // Counts the durable batch and tells the listeners.
    void announce(WriteBatch& batch, const std::vector<std::string>& shredded, const store::CommitTiming& timing);
    void announceRetention(const std::vector<std::string>& keyLinks);
    // Writes a whole batch, or one part of a batch (core/commit.h), committing with the last.
    bool write(WriteBatch& batch);
    bool maintain();
    void stop(const Status& fault);

    Options options_;
    store::BatchWriter& writer_;
    const Clock& clock_;
    BoundedQueue<WriteBatch>& in_;
    WriterStats& stats_;
    std::vector<CommitListener*> listeners_;
    std::function<void()> beat_;
    std::function<void()> busy_;
    std::function<void(const Status&)> fatal_;
    std::thread thread_;
    BoundedQueue<Committed> toSync_{kSyncQueue};
    std::thread syncThread_;
    std::atomic<bool> syncFailed_{false};  // set by the sync thread before it closes the queues
    int64_t lastMaintenanceMs_ = 0;
    // The batch being written in parts.
    std::vector<std::string> shredded_;  // key links shredded elsewhere, noticed as it began
    std::vector<KeyRecord> partKeys_;    // keys its earlier parts stored
};

}  // namespace sluice::service
