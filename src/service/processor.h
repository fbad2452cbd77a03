// The transform stage: turns a Batch of requests into a WriteBatch. It runs on its own thread
// and uses a WorkerPool (one worker per core) for the per-event work, in phases:
//
//   A  parse + validate     workers take contiguous ranges of requests; each event's key-field
//                           value is hashed (the key lookup) to pick its shard
//   S  plan (sequential)    arrival order: rows are numbered, rejects become dead letters and
//                           reply entries, derived-output rows are assigned by consent
//   B  transform            worker i handles the events of shard i: keys (its own KeyCache,
//                           no locks), AES-SIV of every PII field, derived rows, masking
//   C  aggregate (seq.)     every event in arrival order into the aggregators
//
// Workers write into disjoint slots of preallocated rows, so the per-event path takes no lock.
// Configuration changes (setPipeline) and commit notices (committed) are applied between batches.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "contract/validator.h"
#include "core/batch.h"
#include "core/clock.h"
#include "core/commit.h"
#include "core/queue.h"
#include "core/reason.h"
#include "privacy/key_wrap.h"
#include "service/pipeline_runtime.h"

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
};

class Processor {
public:
    struct Options {
        int workers = 2;
        contract::Limits limits;
        int64_t keyLifetimeMs = 86'400'000;
        size_t keyCacheEntries = 150'000;
        uint64_t deadLetterInputBytes = 4096;
        std::string databasePath;
    };

    Processor(Options options, const Clock& clock, const privacy::KeyWrapper& wrapper, BoundedQueue<Batch>& in,
              BoundedQueue<WriteBatch>& out, ProcessorStats& stats);
    ~Processor();

    void setHeartbeat(std::function<void()> beat);
    // Opens the workers' database readers and prepares them for `pipeline`; starts the thread.
    // `watermarks` are the contracts' largest event times read from the database.
    Status start(std::shared_ptr<const PipelineRuntime> pipeline,
                 const std::vector<std::pair<std::string, int64_t>>& watermarks);
    // Applies from the next batch. Any thread.
    void setPipeline(std::shared_ptr<const PipelineRuntime> pipeline);
    // The writer stored `keys` (their rowids set); `shredded` key links were shredded by
    // retention or by another process. Any thread; applied before the next batch.
    void committed(const std::vector<KeyRecord>& keys, const std::vector<std::string>& shredded);
    // Returns when the input queue is closed and drained (the output queue is then closed).
    void join();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::service
