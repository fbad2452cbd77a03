#include <catch2/catch.hpp>

#include <thread>

#include "core/queue.h"

using namespace sluice;

TEST_CASE("bounded queue refuses beyond capacity and drains after close", "[queue]")
{
    BoundedQueue<int> q(2);
    CHECK(q.tryPush(1));
    CHECK(q.tryPush(2));
    CHECK_FALSE(q.tryPush(3));
    CHECK(q.full());
    q.close();
    CHECK_FALSE(q.push(4));
    CHECK(q.pop() == 1);
    CHECK(q.pop() == 2);
    CHECK_FALSE(q.pop().has_value());
}

TEST_CASE("a full bounded queue blocks the producer until a consumer takes", "[queue]")
{
    BoundedQueue<int> q(1);
    REQUIRE(q.push(1));
    std::atomic<bool> pushed{false};
    std::thread producer([&] {
        q.push(2);
        pushed = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK_FALSE(pushed.load());
    CHECK(q.pop() == 1);
    producer.join();
    CHECK(pushed.load());
    CHECK(q.pop() == 2);
}

TEST_CASE("popFor times out on an empty queue", "[queue]")
{
    BoundedQueue<int> q(1);
    CHECK_FALSE(q.popFor(std::chrono::milliseconds(5)).has_value());
    CHECK_FALSE(q.closed());
}
