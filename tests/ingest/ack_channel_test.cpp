// AckChannel: outcomes from the writer thread wake the ingest thread's poll through an eventfd.
#include <catch2/catch.hpp>

#include <poll.h>

#include <thread>

#include "ingest/ack_channel.h"

using namespace sluice;
using namespace sluice::ingest;

namespace {

// Whether the channel's fd is readable within `timeoutMs` (a generous bound, not a measurement).
bool readable(const AckChannel& ch, int timeoutMs)
{
    pollfd p{ch.fd(), POLLIN, 0};
    int n = ::poll(&p, 1, timeoutMs);
    return n == 1 && (p.revents & POLLIN);
}

AckBatch batchOf(uint64_t id, uint64_t seq)
{
    AckBatch b;
    b.batchId = id;
    RequestOutcome o;
    o.producer.assign(1, 'p');  // (assigning a literal trips a GCC 12 -Wrestrict false positive)
    o.seq = seq;
    b.outcomes.push_back(o);
    return b;
}

}  // namespace

TEST_CASE("an empty channel is not readable and gives nothing", "[ingest][acks]")
{
    AckChannel ch;
    CHECK(ch.fd() >= 0);
    CHECK_FALSE(readable(ch, 0));
    bool closed = true;
    CHECK(ch.takeAll(&closed).empty());
    CHECK_FALSE(closed);
}

TEST_CASE("a push from another thread wakes the fd", "[ingest][acks]")
{
    AckChannel ch;
    std::thread writer([&] { ch.push(batchOf(7, 70)); });
    CHECK(readable(ch, 10'000));
    writer.join();
    bool closed = true;
    auto batches = ch.takeAll(&closed);
    CHECK_FALSE(closed);
    REQUIRE(batches.size() == 1);
    CHECK(batches[0].batchId == 7);
    REQUIRE(batches[0].outcomes.size() == 1);
    CHECK(batches[0].outcomes[0].seq == 70);
    // Taking resets readiness.
    CHECK_FALSE(readable(ch, 0));
}

TEST_CASE("many pushes, one wake-up, all taken in order", "[ingest][acks]")
{
    AckChannel ch;
    std::thread writer([&] {
        for (uint64_t i = 1; i <= 100; ++i)
            ch.push(batchOf(i, i * 10));
    });
    writer.join();
    CHECK(readable(ch, 10'000));
    auto batches = ch.takeAll(nullptr);
    REQUIRE(batches.size() == 100);
    for (uint64_t i = 1; i <= 100; ++i) {
        CHECK(batches[i - 1].batchId == i);
        CHECK(batches[i - 1].outcomes[0].seq == i * 10);
    }
    CHECK_FALSE(readable(ch, 0));
    CHECK(ch.takeAll(nullptr).empty());
}

TEST_CASE("concurrent pushes from several threads all arrive", "[ingest][acks]")
{
    AckChannel ch;
    std::vector<std::thread> threads;
    for (uint64_t t = 0; t < 4; ++t)
        threads.emplace_back([&ch, t] {
            for (uint64_t i = 0; i < 250; ++i)
                ch.push(batchOf(t * 1000 + i, i));
        });
    size_t seen = 0;
    std::vector<uint64_t> lastPerThread(4, 0);
    std::vector<bool> any(4, false);
    while (seen < 1000) {
        REQUIRE(readable(ch, 10'000));
        for (AckBatch& b : ch.takeAll(nullptr)) {
            const uint64_t t = b.batchId / 1000, i = b.batchId % 1000;
            if (any[t])
                CHECK(i == lastPerThread[t] + 1);  // each thread's pushes keep their order
            any[t] = true;
            lastPerThread[t] = i;
            ++seen;
        }
    }
    for (auto& th : threads)
        th.join();
    CHECK(seen == 1000);
}

TEST_CASE("close wakes the fd and is reported with what is left", "[ingest][acks]")
{
    AckChannel ch;
    ch.push(batchOf(1, 1));
    std::thread writer([&] { ch.close(); });
    writer.join();
    CHECK(readable(ch, 10'000));
    bool closed = false;
    auto batches = ch.takeAll(&closed);
    CHECK(closed);
    CHECK(batches.size() == 1);
    // Closed stays closed.
    closed = false;
    CHECK(ch.takeAll(&closed).empty());
    CHECK(closed);
}
