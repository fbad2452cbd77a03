#include "service/daemon_metrics.h"

#include <mutex>
#include <string>

namespace sluice::service {

DaemonMetrics::DaemonMetrics(Registry& r, const ingest::IngestStats& ingest, ProcessorStats& processor,
                         const WriterStats& writer, const BoundedQueue<Batch>& batches,
                         const BoundedQueue<WriteBatch>& commits)
    : registry_(r), ingest_(ingest), processor_(processor), writer_(writer), batchQueue_(batches),
      commitQueue_(commits),
      received_(r.counter("sluice_events_received_total", "Events received (every line of every message).")),
      committed_(r.counter("sluice_events_committed_total", "Events committed to the database.")),
      duplicates_(r.counter("sluice_events_duplicate_total",
                            "Events in retried requests that were already committed (applied zero times).")),
      late_(r.counter("sluice_events_late_total",
                      "Late events summed over aggregations (an event late for two aggregations counts twice).")),
      batches_(r.counter("sluice_batches_total", "Batches committed.")),
      messages_(r.counter("sluice_ingest_messages_total", "ZeroMQ messages received.")),
      bytes_(r.counter("sluice_ingest_bytes_total", "Bytes of message bodies received.")),
      replies_(r.counter("sluice_replies_total", "Replies sent to acknowledged producers.")),
      repliesDropped_(r.counter("sluice_replies_dropped_total",
                                "Replies that could not be sent (producer gone or its queue full); it retries.")),
      keysCreated_(r.counter("sluice_keys_created_total", "Data keys created.")),
      keysLoaded_(r.counter("sluice_keys_loaded_total",
                            "Data keys read back from the database (not in memory: privacy.key_cache).")),
      keysShredded_(r.counter("sluice_keys_shredded_total", "Keys shredded by retention.")),
      pausedUs_(r.counter("sluice_ingest_paused_microseconds_total",
                          "Time ingest stopped reading because the pipeline was full (backpressure).")),
      keysCached_(r.gauge("sluice_keys_cached", "Active data keys held in memory.")),
      batchQueueDepth_(r.gauge("sluice_queue_depth", "Batches waiting between stages.", {{"queue", "transform"}})),
      commitQueueDepth_(r.gauge("sluice_queue_depth", "Batches waiting between stages.", {{"queue", "commit"}})),
      lastCommit_(r.gauge("sluice_last_commit_timestamp_seconds", "Wall-clock time of the last commit.")),
      batchEvents_(r.histogram("sluice_batch_events", "Events per committed batch.",
                               {1, 10, 100, 1000, 2500, 5000, 10000, 25000, 100000})),
      commitSeconds_(r.histogram("sluice_commit_seconds", "Time to COMMIT a batch (the fsync).",
                                 exponentialBuckets(0.0001, 2, 14))),
      batchLatency_(r.histogram("sluice_batch_latency_seconds",
                                "From a batch closing to its commit (what an acknowledgement waits for).",
                                exponentialBuckets(0.001, 2, 14)))
{
    r.gauge("sluice_build_info", "Build information.", {{"version", SLUICE_VERSION}}).set(1);
    for (size_t i = 0; i < kReasonCount; ++i)
        rejected_[i] = &r.counter("sluice_events_rejected_total", "Events rejected, by reason.",
                                  {{"reason", std::string(reasonCode(static_cast<Reason>(i)))}});
    for (size_t i = 0; i < stageUs_.size(); ++i)
        stageUs_[i] = &r.counter("sluice_stage_microseconds_total",
                                 "Time spent per pipeline stage (wall time of its phase).",
                                 {{"stage", std::string(kStageNames[i])}});
    for (size_t i = 0; i < kLatencySteps.size(); ++i) {
        const std::pair<std::string, std::string> label{"step", std::string(kLatencySteps[i])};
        latencyStepUs_[i] = &r.counter("sluice_latency_step_microseconds_total",
                                       "Where acknowledgement latency goes: time summed over the step's samples.",
                                       {label});
        latencyStepSamples_[i] = &r.counter(
            "sluice_latency_step_samples_total",
            "Samples of sluice_latency_step_microseconds_total: requests for close_wait, batches for the others.",
            {label});
    }
    // Fine where a 5 ms delay's latency lies (a few ms), coarse beyond.
    const std::vector<double> stepBounds = {0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008,
                                            0.010,  0.012, 0.015,  0.020, 0.025, 0.030, 0.040, 0.050, 0.075,
                                            0.100,  0.150, 0.200,  0.300, 0.500, 1.0,   2.0};
    for (size_t i = 0; i < kBatchLatencySteps.size(); ++i)
        batchStepSeconds_[i] = &r.histogram("sluice_latency_step_seconds",
                                            "Per batch, the seconds of each step after its close: the processor's "
                                            "tail, the writer's tail and COMMIT, the sync.",
                                            stepBounds, {{"step", std::string(kBatchLatencySteps[i])}});
}

void DaemonMetrics::committed(const CommitInfo& info)
{
    batchEvents_.observe(static_cast<double>(info.batch.record.received));
    commitSeconds_.observe(static_cast<double>(info.timing.commitUs) / 1e6);
    batchLatency_.observe(static_cast<double>(info.latencyNs) / 1e9);
    // As WriterStage accounts the same steps: latencyNs runs from the close to now (durable).
    const BatchRecord& r = info.batch.record;
    if (r.closedMonoNs > 0 && r.transformedMonoNs >= r.closedMonoNs && r.committedMonoNs >= r.transformedMonoNs) {
        const int64_t steps[] = {r.transformedMonoNs - r.closedMonoNs, r.committedMonoNs - r.transformedMonoNs,
                                 info.latencyNs - (r.committedMonoNs - r.closedMonoNs)};
        for (size_t i = 0; i < kBatchLatencySteps.size(); ++i)
            batchStepSeconds_[i]->observe(static_cast<double>(std::max<int64_t>(0, steps[i])) / 1e9);
    }
}

void DaemonMetrics::sync()
{
    auto set = [](Counter& c, uint64_t v) {
        uint64_t now = c.value();
        if (v > now)
            c.inc(v - now);
    };
    set(received_, processor_.received.load());
    set(committed_, writer_.events.load());
    set(duplicates_, processor_.duplicates.load());
    set(late_, processor_.late.load());
    set(batches_, writer_.batches.load());
    set(messages_, ingest_.messages.load());
    set(bytes_, ingest_.bytes.load());
    set(replies_, ingest_.repliesSent.load());
    set(repliesDropped_, ingest_.repliesDropped.load());
    set(keysCreated_, processor_.keysCreated.load());
    set(keysLoaded_, processor_.keysLoaded.load());
    set(keysShredded_, writer_.keysShredded.load());
    set(pausedUs_, static_cast<uint64_t>(ingest_.pausedNs.load() / 1000));
    for (size_t i = 0; i < kReasonCount; ++i)
        set(*rejected_[i], processor_.rejected[i].load());
    set(*stageUs_[0], static_cast<uint64_t>(ingest_.busyNs.load() / 1000));
    set(*stageUs_[1], processor_.parseUs.load());
    set(*stageUs_[2], processor_.transformUs.load());
    set(*stageUs_[3], processor_.aggregateUs.load());
    set(*stageUs_[4], writer_.writeUs.load());
    set(*stageUs_[5], writer_.commitUs.load());
    const std::array<std::pair<int64_t, uint64_t>, 5> steps = {{
        {ingest_.closeWaitNs.load(), ingest_.closedRequests.load()},
        {writer_.tailNs.load(), writer_.timedBatches.load()},
        {writer_.writeCommitNs.load(), writer_.timedBatches.load()},
        {writer_.syncNs.load(), writer_.timedBatches.load()},
        {ingest_.replyWaitNs.load(), ingest_.repliedBatches.load()},
    }};
    for (size_t i = 0; i < steps.size(); ++i) {
        set(*latencyStepUs_[i], static_cast<uint64_t>(std::max<int64_t>(0, steps[i].first / 1000)));
        set(*latencyStepSamples_[i], steps[i].second);
    }
    {
        std::lock_guard lock(processor_.lateMutex);
        for (const auto& [aggregation, count] : processor_.lateByAggregation)
            set(registry_.counter("sluice_aggregation_late_events_total",
                                  "Events that arrived for a final window of this aggregation (not counted in it).",
                                  {{"aggregation", aggregation}}),
                count);
    }
    keysCached_.set(static_cast<double>(processor_.keysCached.load()));
    batchQueueDepth_.set(static_cast<double>(batchQueue_.size()));
    commitQueueDepth_.set(static_cast<double>(commitQueue_.size()));
    lastCommit_.set(static_cast<double>(writer_.lastCommitMs.load()) / 1000.0);
}

}  // namespace sluice::service
