// Exporters give way to a saturated pipeline.
//
// The three exporters of the reference workload need more CPU per committed event than the
// pipeline itself (docs/performance.md, "With exporters"). On a host with no spare core they
// would take it from ingest, and the pipeline would commit a third less. So while the pipeline is
// saturated, each exporter works only a share of the time and sleeps the rest; the lag grows
// instead, and the exporters catch up from their cursors once the pipeline has room again.
//
// Saturated means that ingest is held back by backpressure: it stopped reading its sockets
// because the pipeline's input queue was full (IngestStats::pausedNs) for at least a tenth of
// the last 100 ms or more. Below saturation the exporters run as fast as their sinks take
// records, and unlike a nice value this does not make them give way to other processes of the
// host.
#pragma once

#include <algorithm>
#include <cstdint>

namespace sluice::exports {

class PipelinePressure {
public:
    // `busyPercent`: how much of the time an exporter may work while the pipeline is saturated
    // (1-100; 100 never yields).
    explicit PipelinePressure(int busyPercent) : busyPercent_(std::clamp(busyPercent, 1, 100)) {}

    static constexpr int64_t kSampleNs = 100'000'000;  // judged over at least this long
    static constexpr int64_t kHoldNs = 500'000'000;    // and held for this long after
    static constexpr int64_t kMaxYieldNs = 1'000'000'000;

    // How long to sleep after `workNs` of the exporter's CPU, given ingest's paused total
    // `pausedNs` at monotonic time `nowNs`: 0 below saturation.
    int64_t yieldNs(int64_t pausedNs, int64_t nowNs, int64_t workNs)
    {
        if (busyPercent_ >= 100)
            return 0;
        if (sampleNs_ == 0) {
            sampleNs_ = nowNs;
            samplePaused_ = pausedNs;
        } else if (nowNs - sampleNs_ >= kSampleNs) {
            // Ingest paused for a tenth of the interval or more: the pipeline cannot keep up.
            if ((pausedNs - samplePaused_) * 10 >= nowNs - sampleNs_)
                saturatedUntilNs_ = nowNs + kHoldNs;
            sampleNs_ = nowNs;
            samplePaused_ = pausedNs;
        }
        if (nowNs >= saturatedUntilNs_ || workNs <= 0)
            return 0;
        return std::min(workNs * (100 - busyPercent_) / busyPercent_, kMaxYieldNs);
    }

private:
    int busyPercent_;
    int64_t sampleNs_ = 0;
    int64_t samplePaused_ = 0;
    int64_t saturatedUntilNs_ = 0;
};

}  // namespace sluice::exports
