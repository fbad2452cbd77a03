// PipelinePressure: exporters yield only while ingest is held back by a full pipeline.
#include <catch2/catch.hpp>

#include "export/pipeline_pressure.h"

namespace sluice::exports {
namespace {

constexpr int64_t kMs = 1'000'000;

}  // namespace

TEST_CASE("an exporter yields only while ingest pauses for a tenth of the time or more", "[export][pressure]")
{
    PipelinePressure p(5);
    int64_t now = 1'000 * kMs;
    int64_t paused = 0;
    CHECK(p.yieldNs(paused, now, 2 * kMs) == 0);  // the first sample: nothing known yet

    // Ingest paused 5 ms in 100 ms: a blip, not saturation.
    now += 100 * kMs;
    paused += 5 * kMs;
    CHECK(p.yieldNs(paused, now, 2 * kMs) == 0);

    // 40 ms in 100 ms: saturated. 2 ms of work at 5% buys 38 ms of sleep.
    now += 100 * kMs;
    paused += 40 * kMs;
    CHECK(p.yieldNs(paused, now, 2 * kMs) == 38 * kMs);
    // Within the sample interval the judgement holds; no work, no sleep.
    now += 10 * kMs;
    CHECK(p.yieldNs(paused, now, 1 * kMs) == 19 * kMs);
    CHECK(p.yieldNs(paused, now, 0) == 0);
    // A long chunk is not followed by an unbounded sleep.
    CHECK(p.yieldNs(paused, now, 500 * kMs) == PipelinePressure::kMaxYieldNs);

    // Ingest stops pausing: the saturation holds for kHoldNs, then the exporter runs freely.
    now += 100 * kMs;
    CHECK(p.yieldNs(paused, now, 2 * kMs) > 0);
    now += PipelinePressure::kHoldNs;
    CHECK(p.yieldNs(paused, now, 2 * kMs) == 0);
}

TEST_CASE("100 percent never yields", "[export][pressure]")
{
    PipelinePressure p(100);
    int64_t now = 1'000 * kMs;
    int64_t paused = 0;
    for (int i = 0; i < 5; ++i) {
        now += 100 * kMs;
        paused += 100 * kMs;  // ingest paused all the time
        CHECK(p.yieldNs(paused, now, 2 * kMs) == 0);
    }
}

}  // namespace sluice::exports
