// LanePool: every lane of a phase runs exactly once, on whichever thread claims it, and run()
// returns only when all have; a thread that wakes late never runs a finished phase's task.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "job/lane_pool.h"

namespace sluice::job {
namespace {

TEST_CASE("every lane of every phase runs once, and run() waits for all of them", "[lane_pool]")
{
    const auto [threads, lanes] = GENERATE(std::pair{1, 1}, std::pair{1, 4}, std::pair{2, 2}, std::pair{2, 4},
                                           std::pair{3, 8});
    LanePool pool(threads, lanes);
    REQUIRE(pool.lanes() == lanes);
    REQUIRE(pool.threads() == threads);
    for (int phase = 0; phase < 2000; ++phase) {
        // Lives only during this phase: a stale task running later would write into freed memory
        // (the ASan build catches it) or miscount the next phase.
        std::vector<std::atomic<int>> ran(static_cast<size_t>(lanes));
        pool.run([&](int lane) {
            REQUIRE(lane >= 0);
            REQUIRE(lane < lanes);
            if (phase % 97 == 0)
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            ran[static_cast<size_t>(lane)].fetch_add(1);
        });
        for (int l = 0; l < lanes; ++l)
            REQUIRE(ran[static_cast<size_t>(l)].load() == 1);
    }
}

TEST_CASE("lanes are taken by the calling thread when the workers are busy, and by the workers otherwise",
          "[lane_pool]")
{
    LanePool pool(2, 4);
    std::mutex m;
    std::set<std::thread::id> seen;
    for (int phase = 0; phase < 200; ++phase) {
        pool.run([&](int) {
            std::this_thread::sleep_for(std::chrono::microseconds(300));
            std::lock_guard lock(m);
            seen.insert(std::this_thread::get_id());
        });
    }
    CHECK(seen.count(std::this_thread::get_id()) == 1);
    CHECK(seen.size() == 2);
}

TEST_CASE("fewer lanes than threads gets one lane per thread", "[lane_pool]")
{
    LanePool pool(3, 1);
    CHECK(pool.lanes() == 3);
}

}  // namespace
}  // namespace sluice::job
