// The daemon's transform stage: a thread that takes batches from the batch queue, in parts as
// the ingest thread hands them on while they fill (core/batch.h), runs each part through the
// Transformer (src/transform/, on a WorkerPool of one lane per core) as it comes, and hands the
// batch's end to the commit queue when its final part is done. Whenever the writer has taken
// everything handed to it, it also gets the rows transformed so far (Transformer::takePart), to
// write in the batch's open transaction. The work of a batch thus overlaps with its filling; only
// its last part and the commit remain once it closes. What changes between batches (a reloaded configuration,
// keys the writer stored, keys shredded elsewhere) is handed in from other threads and applied
// before the next batch.
//
// A batch that cannot be transformed (a key that cannot be made or read, a cipher failure) is
// fatal: nothing of it may be committed or acknowledged. The thread then closes both queues,
// reports the Status through the fatal callback and stops; the owner shuts the daemon down
// (systemd restarts it, producers retry).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/batch.h"
#include "core/clock.h"
#include "core/commit.h"
#include "core/queue.h"
#include "core/reason.h"
#include "core/status.h"
#include "privacy/key_wrap.h"
#include "transform/pipeline_runtime.h"
#include "transform/transformer.h"
#include "transform/worker_pool.h"

namespace sluice::service {

struct ProcessorStats {
    std::atomic<uint64_t> batches{0};
    std::atomic<uint64_t> received{0};
    std::atomic<uint64_t> accepted{0};
    std::atomic<uint64_t> duplicates{0};
    std::atomic<uint64_t> late{0};
    // Late events per aggregation (name -> count), for the metrics. Guarded by lateMutex.
    std::mutex lateMutex;
    std::map<std::string, uint64_t> lateByAggregation;
    std::atomic<uint64_t> keysCreated{0};
    std::atomic<uint64_t> keysLoaded{0};
    std::atomic<uint64_t> keysCached{0};
    std::array<std::atomic<uint64_t>, kReasonCount> rejected{};
    std::atomic<uint64_t> parseUs{0};
    std::atomic<uint64_t> transformUs{0};
    std::atomic<uint64_t> aggregateUs{0};

    // Adds what one transformed batch counted.
    void add(const WriteBatch& wb, const transform::KeyCacheCounts& keys);
};

class Processor {
public:
    struct Options {
        int workers = 2;
        transform::TransformOptions transform;
        int64_t keyLifetimeMs = 86'400'000;
        std::string databasePath;  // where committed keys are read from
    };

    Processor(Options options, const Clock& clock, const privacy::KeyWrapper& wrapper, BoundedQueue<Batch>& in,
              BoundedQueue<WriteBatch>& out, ProcessorStats& stats);
    ~Processor();
    Processor(const Processor&) = delete;
    Processor& operator=(const Processor&) = delete;

    // Called on the processor thread: beat while making progress; fatal once, when it stops on
    // a failure. Set both before start().
    void setHeartbeat(std::function<void()> beat);
    void setFatal(std::function<void(const Status&)> fatal);
    // Prepares the Transformer for `pipeline` (reading the key directory) and starts the thread.
    // `watermarks` are the contracts' largest event times read from the database.
    Status start(std::shared_ptr<const transform::PipelineRuntime> pipeline,
                 const std::vector<std::pair<std::string, int64_t>>& watermarks);
    // Applies from the next batch. Any thread.
    void setPipeline(std::shared_ptr<const transform::PipelineRuntime> pipeline);
    // The writer stored `keys` (their rowids set); `shredded` key links were shredded by
    // retention or by another process. Any thread; applied before the next batch.
    void committed(const std::vector<KeyRecord>& keys, const std::vector<std::string>& shredded);
    // Returns when the thread has stopped: the input queue closed and drained (the output queue
    // is then closed), or a fatal failure.
    void join();

private:
    void run();
    void applyNotices();

    Options options_;
    const Clock& clock_;
    const privacy::KeyWrapper& wrapper_;
    BoundedQueue<Batch>& in_;
    BoundedQueue<WriteBatch>& out_;
    ProcessorStats& stats_;
    std::function<void()> beat_;
    std::function<void(const Status&)> fatal_;
    transform::WorkerPool pool_;
    transform::RollingKeys keyPolicy_;
    std::unique_ptr<transform::Transformer> transformer_;
    std::thread thread_;

    std::mutex pendingMutex_;
    std::shared_ptr<const transform::PipelineRuntime> pendingPipeline_;
    std::vector<KeyRecord> pendingStored_;
    std::vector<std::string> pendingShredded_;
};

}  // namespace sluice::service
