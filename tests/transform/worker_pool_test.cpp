#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "transform/worker_pool.h"

namespace sluice::transform {

TEST_CASE("run() calls every lane once, lane 0 on the calling thread, and returns when all are done")
{
    WorkerPool pool(3);
    REQUIRE(pool.lanes() == 3);
    for (int round = 0; round < 200; ++round) {
        std::vector<std::atomic<int>> calls(3);
        std::vector<std::thread::id> threads(3);
        pool.run([&](int lane) {
            calls[static_cast<size_t>(lane)]++;
            threads[static_cast<size_t>(lane)] = std::this_thread::get_id();
        });
        for (auto& c : calls)
            REQUIRE(c.load() == 1);
        REQUIRE(threads[0] == std::this_thread::get_id());
        REQUIRE(std::set<std::thread::id>(threads.begin(), threads.end()).size() == 3);
    }
}

TEST_CASE("a pool of fewer than one worker has one lane")
{
    WorkerPool pool(0);
    CHECK(pool.lanes() == 1);
    int calls = 0;
    pool.run([&](int lane) { calls += lane == 0; });
    CHECK(calls == 1);
}

}  // namespace sluice::transform
