#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "service/notify.h"

using namespace sluice::service;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

namespace {
// An arbitrary monotonic origin: ticks take times, they never read a clock.
constexpr nanoseconds kT0 = 1000s;
}  // namespace

TEST_CASE("stages that keep beating keep the pipeline healthy", "[watchdog]")
{
    ProgressWatchdog watchdog(10s);
    auto& ingest = watchdog.addStage("ingest");
    auto& writer = watchdog.addStage("writer");

    for (int i = 0; i <= 100; ++i) {
        // Beating when idle counts too: an idle daemon is a healthy daemon.
        ingest.beat();
        writer.beat();
        const auto health = watchdog.tick(kT0 + i * 5s);
        REQUIRE(health.healthy);
        CHECK(health.describe() == "healthy");
    }
}

TEST_CASE("a stage that stops beating is stalled once silent for longer than the limit", "[watchdog]")
{
    ProgressWatchdog watchdog(10s);
    auto& ingest = watchdog.addStage("ingest");
    auto& writer = watchdog.addStage("writer");

    ingest.beat();
    writer.beat();
    CHECK(watchdog.tick(kT0));
    ingest.beat();
    CHECK(watchdog.tick(kT0 + 4s));  // writer silent since kT0, ingest moved
    ingest.beat();
    CHECK(watchdog.tick(kT0 + 10s));  // exactly the limit: not yet

    ingest.beat();
    const auto health = watchdog.tick(kT0 + 10s + 1ns);
    CHECK_FALSE(health);
    CHECK(health.stage == "writer");
    CHECK(health.busyWith.empty());
    CHECK(health.silentFor == 10s + 1ns);

    // One beat later the stage is healthy again.
    writer.beat();
    ingest.beat();
    CHECK(watchdog.tick(kT0 + 12s));
}

TEST_CASE("a stage busy for longer than the limit is stalled and says in what", "[watchdog]")
{
    ProgressWatchdog watchdog(10s);
    auto& writer = watchdog.addStage("writer");

    CHECK(watchdog.tick(kT0));
    writer.busy("commit");
    CHECK(watchdog.tick(kT0 + 1s));  // busy() is progress itself: the clock restarts here
    CHECK(watchdog.tick(kT0 + 11s));

    const auto health = watchdog.tick(kT0 + 11s + 500ms);
    REQUIRE_FALSE(health);
    CHECK(health.stage == "writer");
    CHECK(health.busyWith == "commit");
    CHECK(health.silentFor == 10500ms);
    CHECK(health.describe() == "writer stalled: busy in commit for 10.5 s");

    // beat() ends the busy period.
    writer.beat();
    CHECK(watchdog.tick(kT0 + 12s));
    const auto later = watchdog.tick(kT0 + 30s);
    REQUIRE_FALSE(later);
    CHECK(later.busyWith.empty());
    CHECK(later.describe() == "writer stalled: no progress for 18.0 s");
}

TEST_CASE("a stage that never beats is stalled a limit after the first tick", "[watchdog]")
{
    ProgressWatchdog watchdog(5s);
    watchdog.addStage("exporter");
    CHECK(watchdog.tick(kT0));
    CHECK(watchdog.tick(kT0 + 5s));
    const auto health = watchdog.tick(kT0 + 6s);
    CHECK_FALSE(health);
    CHECK(health.stage == "exporter");
}

TEST_CASE("the stall report names the stage silent the longest", "[watchdog]")
{
    ProgressWatchdog watchdog(10s);
    auto& a = watchdog.addStage("a");
    auto& b = watchdog.addStage("b");
    auto& c = watchdog.addStage("c");

    a.beat();
    b.beat();
    c.beat();
    CHECK(watchdog.tick(kT0));
    a.beat();
    c.beat();
    CHECK(watchdog.tick(kT0 + 3s));  // b silent since kT0; a and c since kT0 + 3s
    c.beat();
    const auto health = watchdog.tick(kT0 + 20s);
    CHECK_FALSE(health);
    CHECK(health.stage == "b");
    CHECK(health.silentFor == 20s);
}

TEST_CASE("a retired stage is no longer watched", "[watchdog]")
{
    ProgressWatchdog watchdog(10s);
    auto& ingest = watchdog.addStage("ingest");
    auto& writer = watchdog.addStage("writer");

    CHECK(watchdog.tick(kT0));
    ingest.retire();  // e.g. ingest closed during a drain
    writer.beat();
    CHECK(watchdog.tick(kT0 + 8s));
    writer.beat();
    CHECK(watchdog.tick(kT0 + 60s));
}

TEST_CASE("a stage added later is watched from the first tick that sees it", "[watchdog]")
{
    ProgressWatchdog watchdog(10s);
    auto& first = watchdog.addStage("first");
    CHECK(watchdog.tick(kT0));
    auto& second = watchdog.addStage("second");
    first.beat();
    CHECK(watchdog.tick(kT0 + 8s));
    first.beat();
    CHECK(watchdog.tick(kT0 + 18s));  // second: silent for 10 s since kT0 + 8s, not longer
    first.beat();
    CHECK_FALSE(watchdog.tick(kT0 + 19s));
    second.beat();
    first.beat();
    CHECK(watchdog.tick(kT0 + 20s));
}

TEST_CASE("beats from many threads race safely with ticks", "[watchdog]")
{
    ProgressWatchdog watchdog(1h);
    std::vector<ProgressWatchdog::Stage*> stages;
    for (int i = 0; i < 4; ++i)
        stages.push_back(&watchdog.addStage("stage" + std::to_string(i)));

    std::atomic<bool> done{false};
    std::vector<std::thread> threads;
    for (auto* stage : stages) {
        threads.emplace_back([stage, &done] {
            for (int i = 0; i < 20000; ++i)
                (i % 3 == 0) ? stage->busy("work") : stage->beat();
            done = true;
        });
    }
    nanoseconds now = kT0;
    while (!done) {
        CHECK(watchdog.tick(now));
        now += 1ms;
    }
    for (auto& t : threads)
        t.join();
    CHECK(watchdog.tick(now));
}
