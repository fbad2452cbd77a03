// The daemon's Prometheus metrics. Pipeline counters live in the stages as plain atomics; the
// registry is brought up to date from them whenever /metrics is scraped (sync(), on the main
// thread). Histograms are fed per committed batch: DaemonMetrics is a CommitListener.
#pragma once

#include <array>
#include <string_view>

#include "core/batch.h"
#include "core/commit.h"
#include "core/queue.h"
#include "core/reason.h"
#include "ingest/receiver.h"
#include "service/commit_listener.h"
#include "service/metrics.h"
#include "service/processor.h"
#include "service/writer_stage.h"

namespace sluice::service {

// The pipeline stages of the per-stage profile (sluice_stage_microseconds_total{stage=...}), in
// pipeline order. sluicectl bench reads them back by these names.
inline constexpr std::array<std::string_view, 6> kStageNames = {"receive", "parse", "transform",
                                                                "aggregate", "write", "commit"};

// The steps of a request's latency (sluice_latency_step_microseconds_total{step=...} and
// sluice_latency_step_samples_total{step=...}), in order: waiting for the batch to close (per
// request), the processor's tail after the close, the writer's tail and COMMIT, the sync
// thread's fdatasync (each per batch), the replies (per batch). sluicectl bench reads them back.
inline constexpr std::array<std::string_view, 5> kLatencySteps = {"close_wait", "tail", "write_commit", "sync",
                                                                  "reply"};
// The per-batch steps of kLatencySteps with a histogram each (sluice_latency_step_seconds{step=...}),
// so that a tail can be pinned on one of them: sluicectl bench prints their p99.
inline constexpr std::array<std::string_view, 3> kBatchLatencySteps = {"tail", "write_commit", "sync"};

class DaemonMetrics final : public CommitListener {
public:
    DaemonMetrics(Registry& r, const ingest::IngestStats& ingest, ProcessorStats& processor,
                  const WriterStats& writer, const BoundedQueue<Batch>& batches,
                  const BoundedQueue<WriteBatch>& commits);

    // Writer thread: the histograms of one committed batch.
    void committed(const CommitInfo& info) override;
    // Main thread: brings the registry's counters and gauges up to date.
    void sync();

private:
    Registry& registry_;
    const ingest::IngestStats& ingest_;
    ProcessorStats& processor_;
    const WriterStats& writer_;
    const BoundedQueue<Batch>& batchQueue_;
    const BoundedQueue<WriteBatch>& commitQueue_;
    Counter& received_;
    Counter& committed_;
    Counter& duplicates_;
    Counter& late_;
    Counter& batches_;
    Counter& messages_;
    Counter& bytes_;
    Counter& replies_;
    Counter& repliesDropped_;
    Counter& keysCreated_;
    Counter& keysLoaded_;
    Counter& keysShredded_;
    Counter& pausedUs_;
    Gauge& keysCached_;
    Gauge& batchQueueDepth_;
    Gauge& commitQueueDepth_;
    Gauge& lastCommit_;
    Histogram& batchEvents_;
    Histogram& commitSeconds_;
    Histogram& batchLatency_;
    std::array<Histogram*, kBatchLatencySteps.size()> batchStepSeconds_{};
    std::array<Counter*, kReasonCount> rejected_{};
    std::array<Counter*, 6> stageUs_{};
    std::array<Counter*, 5> latencyStepUs_{};
    std::array<Counter*, 5> latencyStepSamples_{};
};

}  // namespace sluice::service
