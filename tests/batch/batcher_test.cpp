// The micro-batcher's three bounds (events, bytes, delay) with a ManualClock, whichever comes
// first; requests never split; an oversized request alone; flush on drain; consecutive ids.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "batch/batcher.h"
#include "core/clock.h"

using namespace sluice;
using namespace sluice::batch;

namespace {

constexpr int64_t kMs = 1'000'000;

// Collects what the batcher hands on.
struct Sink {
    std::vector<Batch> batches;
    Batcher::Sink fn()
    {
        return [this](Batch&& b) { batches.push_back(std::move(b)); };
    }
};

// A request of `events` lines and exactly `bytes` payload bytes, received now.
Request request(const ManualClock& clock, uint32_t events, size_t bytes, const std::string& tag = "")
{
    Request r;
    std::string body = tag;
    body.resize(bytes, 'x');
    r.payload = Payload(body);
    r.events = events;
    r.wireBytes = bytes;
    r.receivedAtMs = clock.wallMs();
    r.receivedMonoNs = clock.monoNs();
    return r;
}

Limits limits(uint64_t events, uint64_t bytes, int64_t delayMs)
{
    Limits l;
    l.maxEvents = events;
    l.maxBytes = bytes;
    l.maxDelayMs = delayMs;
    return l;
}

std::string tagFor(uint32_t i)
{
    std::string tag(1, 'q');
    tag += static_cast<char>('0' + i % 10);
    return tag;
}

std::string tagOf(const Request& r) { return std::string(r.payload.view().substr(0, 2)); }

}  // namespace

TEST_CASE("a batch closes when it reaches max events", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(10, 1 << 20, 200), clock, 1, sink.fn());
    for (int i = 0; i < 4; ++i) {
        b.add(request(clock, 3, 10));  // 3, 6, 9, 12 events
    }
    // 3 + 3 + 3 = 9; the fourth (3 more) would make 12 > 10: the open batch closes first.
    REQUIRE(sink.batches.size() == 1);
    CHECK(sink.batches[0].events == 9);
    CHECK(sink.batches[0].requests.size() == 3);
    CHECK(sink.batches[0].closeReason == CloseReason::kEvents);
    CHECK_FALSE(b.empty());

    // Exactly reaching the bound closes at once, with the request that reached it.
    b.add(request(clock, 7, 10));  // 3 + 7 = 10
    REQUIRE(sink.batches.size() == 2);
    CHECK(sink.batches[1].events == 10);
    CHECK(sink.batches[1].requests.size() == 2);
    CHECK(sink.batches[1].closeReason == CloseReason::kEvents);
    CHECK(b.empty());
    CHECK(b.nanosUntilDeadline() == -1);
}

TEST_CASE("a batch closes when it reaches max bytes", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(1000, 100, 200), clock, 1, sink.fn());
    b.add(request(clock, 1, 40));
    b.add(request(clock, 1, 40));
    CHECK(sink.batches.empty());
    b.add(request(clock, 1, 30));  // 110 > 100: the open batch (80 bytes) closes first
    REQUIRE(sink.batches.size() == 1);
    CHECK(sink.batches[0].bytes == 80);
    CHECK(sink.batches[0].events == 2);
    CHECK(sink.batches[0].closeReason == CloseReason::kBytes);
    b.add(request(clock, 1, 70));  // 30 + 70 = 100: reaches the bound exactly
    REQUIRE(sink.batches.size() == 2);
    CHECK(sink.batches[1].bytes == 100);
    CHECK(sink.batches[1].closeReason == CloseReason::kBytes);
    CHECK(b.empty());
}

TEST_CASE("a batch closes when max delay has passed since its first request, not before", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(1000, 1 << 20, 200), clock, 1, sink.fn());
    const int64_t opened = clock.monoNs();
    b.add(request(clock, 1, 10));
    CHECK(b.nanosUntilDeadline() == 200 * kMs);

    clock.advanceMs(150);
    b.add(request(clock, 1, 10));  // a later request does not move the deadline
    CHECK(b.nanosUntilDeadline() == 50 * kMs);
    b.poll();
    CHECK(sink.batches.empty());

    clock.advanceMs(49);
    b.poll();
    CHECK(sink.batches.empty());
    CHECK(b.nanosUntilDeadline() == 1 * kMs);

    clock.advanceMs(1);  // exactly max delay
    CHECK(b.nanosUntilDeadline() == 0);
    b.poll();
    REQUIRE(sink.batches.size() == 1);
    const Batch& batch = sink.batches[0];
    CHECK(batch.closeReason == CloseReason::kDelay);
    CHECK(batch.events == 2);
    CHECK(batch.openedMonoNs == opened);
    CHECK(batch.closedMonoNs == opened + 200 * kMs);
    CHECK(batch.openedAtMs == 1'700'000'000'000);
    CHECK(batch.closedAtMs == 1'700'000'000'200);
    CHECK(b.empty());

    // An empty batcher has no deadline and polling does nothing.
    clock.advanceMs(1000);
    b.poll();
    CHECK(sink.batches.size() == 1);
    CHECK(b.nanosUntilDeadline() == -1);
}

TEST_CASE("the delay is measured from the first request's receive time", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(1000, 1 << 20, 100), clock, 1, sink.fn());
    Request r = request(clock, 1, 10);
    clock.advanceMs(60);  // the request waited 60 ms before reaching the batcher
    b.add(std::move(r));
    CHECK(b.nanosUntilDeadline() == 40 * kMs);
    clock.advanceMs(40);
    b.poll();
    REQUIRE(sink.batches.size() == 1);
    CHECK(sink.batches[0].closeReason == CloseReason::kDelay);

    // Long overdue: the deadline reads 0, never negative.
    b.add(request(clock, 1, 10));
    clock.advanceMs(10'000);
    CHECK(b.nanosUntilDeadline() == 0);
}

TEST_CASE("whichever bound comes first closes the batch", "[batch]")
{
    ManualClock clock;
    SECTION("events before bytes and delay")
    {
        Sink sink;
        Batcher b(limits(3, 1000, 100), clock, 1, sink.fn());
        for (int i = 0; i < 3; ++i)
            b.add(request(clock, 1, 10));
        REQUIRE(sink.batches.size() == 1);
        CHECK(sink.batches[0].closeReason == CloseReason::kEvents);
    }
    SECTION("bytes before events and delay")
    {
        Sink sink;
        Batcher b(limits(3, 25, 100), clock, 1, sink.fn());
        b.add(request(clock, 1, 10));
        b.add(request(clock, 1, 15));
        REQUIRE(sink.batches.size() == 1);
        CHECK(sink.batches[0].closeReason == CloseReason::kBytes);
        CHECK(sink.batches[0].events == 2);
    }
    SECTION("delay before events and bytes")
    {
        Sink sink;
        Batcher b(limits(3, 1000, 100), clock, 1, sink.fn());
        b.add(request(clock, 1, 10));
        b.add(request(clock, 1, 10));
        clock.advanceMs(100);
        b.poll();
        REQUIRE(sink.batches.size() == 1);
        CHECK(sink.batches[0].closeReason == CloseReason::kDelay);
        CHECK(sink.batches[0].events == 2);
    }
    SECTION("both size bounds at once: events is named")
    {
        Sink sink;
        Batcher b(limits(2, 20, 100), clock, 1, sink.fn());
        b.add(request(clock, 2, 20));
        REQUIRE(sink.batches.size() == 1);
        CHECK(sink.batches[0].closeReason == CloseReason::kEvents);
    }
    SECTION("a request that would overflow bytes closes the open batch as bytes")
    {
        Sink sink;
        Batcher b(limits(100, 50, 100), clock, 1, sink.fn());
        b.add(request(clock, 1, 30));
        b.add(request(clock, 1, 30));
        REQUIRE(sink.batches.size() == 1);
        CHECK(sink.batches[0].closeReason == CloseReason::kBytes);
        CHECK(sink.batches[0].bytes == 30);
        CHECK(b.nanosUntilDeadline() == 100 * kMs);  // the second request opened a new batch
    }
}

TEST_CASE("a request that would overflow closes the open batch first; requests are never split", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(10, 1 << 20, 200), clock, 1, sink.fn());
    b.add(request(clock, 4, 10, "r1"));
    b.add(request(clock, 4, 10, "r2"));
    clock.advanceMs(5);
    b.add(request(clock, 5, 10, "r3"));  // 8 + 5 > 10
    REQUIRE(sink.batches.size() == 1);
    CHECK(sink.batches[0].requests.size() == 2);
    CHECK(tagOf(sink.batches[0].requests[0]) == "r1");
    CHECK(tagOf(sink.batches[0].requests[1]) == "r2");
    // The new batch holds the whole request, and its age starts with it.
    CHECK_FALSE(b.empty());
    CHECK(b.nanosUntilDeadline() == 200 * kMs);
    b.flush();
    REQUIRE(sink.batches.size() == 2);
    REQUIRE(sink.batches[1].requests.size() == 1);
    CHECK(tagOf(sink.batches[1].requests[0]) == "r3");
    CHECK(sink.batches[1].events == 5);
}

TEST_CASE("an oversized request makes a batch of its own", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(10, 100, 200), clock, 1, sink.fn());
    SECTION("into an empty batcher")
    {
        b.add(request(clock, 50, 10, "big"));
        REQUIRE(sink.batches.size() == 1);
        CHECK(sink.batches[0].events == 50);
        CHECK(sink.batches[0].requests.size() == 1);
        CHECK(sink.batches[0].closeReason == CloseReason::kEvents);
        CHECK(b.empty());
    }
    SECTION("into an open batch: that closes first, then the big one alone")
    {
        b.add(request(clock, 1, 10, "sm"));
        b.add(request(clock, 1, 500, "bg"));
        REQUIRE(sink.batches.size() == 2);
        CHECK(sink.batches[0].requests.size() == 1);
        CHECK(tagOf(sink.batches[0].requests[0]) == "sm");
        CHECK(sink.batches[0].closeReason == CloseReason::kBytes);
        CHECK(sink.batches[1].requests.size() == 1);
        CHECK(tagOf(sink.batches[1].requests[0]) == "bg");
        CHECK(sink.batches[1].bytes == 500);
        CHECK(sink.batches[1].closeReason == CloseReason::kBytes);
        CHECK(sink.batches[0].id + 1 == sink.batches[1].id);
        CHECK(b.empty());
    }
}

TEST_CASE("flush closes the open batch on drain, and does nothing when empty", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(100, 1 << 20, 200), clock, 7, sink.fn());
    b.flush();
    CHECK(sink.batches.empty());
    b.add(request(clock, 2, 10));
    b.add(request(clock, 3, 10));
    clock.advanceMs(20);
    b.flush();
    REQUIRE(sink.batches.size() == 1);
    CHECK(sink.batches[0].closeReason == CloseReason::kDrain);
    CHECK(sink.batches[0].events == 5);
    CHECK(sink.batches[0].bytes == 20);
    CHECK(sink.batches[0].requests.size() == 2);
    CHECK(sink.batches[0].id == 7);
    CHECK(sink.batches[0].closedAtMs == sink.batches[0].openedAtMs + 20);
    CHECK(b.empty());
    b.flush();
    CHECK(sink.batches.size() == 1);
    CHECK(closeReasonName(CloseReason::kDrain) == "drain");
}

TEST_CASE("batch ids are consecutive from the first id, whatever closes them", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(3, 100, 50), clock, 41, sink.fn());
    CHECK(b.nextBatchId() == 41);
    b.add(request(clock, 3, 1));       // events
    b.add(request(clock, 1, 100));     // bytes
    b.add(request(clock, 1, 1));
    clock.advanceMs(50);
    b.poll();                          // delay
    b.add(request(clock, 1, 1));
    b.flush();                         // drain
    REQUIRE(sink.batches.size() == 4);
    for (size_t i = 0; i < sink.batches.size(); ++i)
        CHECK(sink.batches[i].id == 41 + i);
    CHECK(sink.batches[0].closeReason == CloseReason::kEvents);
    CHECK(sink.batches[1].closeReason == CloseReason::kBytes);
    CHECK(sink.batches[2].closeReason == CloseReason::kDelay);
    CHECK(sink.batches[3].closeReason == CloseReason::kDrain);
    CHECK(b.nextBatchId() == 45);
}

TEST_CASE("a batch's counts are the sums of its requests; the payload moves intact", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(1000, 1 << 20, 200), clock, 1, sink.fn());
    uint64_t events = 0, bytes = 0;
    for (uint32_t i = 1; i <= 20; ++i) {
        Request r = request(clock, i, i * 3, tagFor(i));
        r.producer.assign(1, 'p');  // (a literal here trips GCC 12's -Wrestrict false positive)
        r.seq = i;
        events += i;
        bytes += i * 3;
        b.add(std::move(r));
        clock.advanceMs(1);
    }
    b.flush();
    REQUIRE(sink.batches.size() == 1);
    const Batch& batch = sink.batches[0];
    CHECK(batch.events == events);
    CHECK(batch.bytes == bytes);
    REQUIRE(batch.requests.size() == 20);
    for (uint32_t i = 1; i <= 20; ++i) {
        const Request& r = batch.requests[i - 1];
        CHECK(r.seq == i);
        CHECK(r.payload.size() == i * 3);
        CHECK(r.payload.view().substr(0, 2) == tagFor(i));
        // The padding after the payload is zero, for the JSON parser.
        for (size_t p = 0; p < Payload::kPadding; ++p)
            REQUIRE(r.payload.data()[r.payload.size() + p] == 0);
    }
}

TEST_CASE("bytes count the payload kept, not the size on the wire", "[batch]")
{
    // A refused message keeps only a capped copy: the batch's memory is what the bound limits.
    ManualClock clock;
    Sink sink;
    Batcher b(limits(1000, 100, 200), clock, 1, sink.fn());
    Request r = request(clock, 1, 10);
    r.wireBytes = 1'000'000;
    r.state = RequestState::kRejected;
    b.add(std::move(r));
    CHECK(sink.batches.empty());
    b.flush();
    REQUIRE(sink.batches.size() == 1);
    CHECK(sink.batches[0].bytes == 10);
}

TEST_CASE("countEvents counts non-blank NDJSON lines", "[batch]")
{
    CHECK(countEvents("") == 0);
    CHECK(countEvents("\n\n") == 0);
    CHECK(countEvents(" \t\r\n  ") == 0);
    CHECK(countEvents("{}") == 1);
    CHECK(countEvents("{}\n") == 1);
    CHECK(countEvents("{}\n{}") == 2);
    CHECK(countEvents("{}\r\n\r\n{}\r\n") == 2);
    CHECK(countEvents("\n{}\n \n{}\n\n{}") == 3);
    CHECK(countEvents("x") == 1);
}

TEST_CASE("release() hands the open batch on in parts; the bounds count the whole batch", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(5, 1000, 50), clock, 7, sink.fn());
    b.release();  // nothing open: no part
    CHECK(sink.batches.empty());
    b.add(request(clock, 2, 10));
    b.release();
    REQUIRE(sink.batches.size() == 1);
    CHECK(sink.batches[0].id == 7);
    CHECK(sink.batches[0].first);
    CHECK_FALSE(sink.batches[0].final);
    CHECK(sink.batches[0].requests.size() == 1);
    CHECK(sink.batches[0].events == 2);
    CHECK_FALSE(b.empty());
    CHECK_FALSE(b.unreleased());
    b.release();  // nothing new: no part
    CHECK(sink.batches.size() == 1);
    b.add(request(clock, 2, 10));
    b.release();
    b.add(request(clock, 1, 10));  // 5 events in all: the batch closes with this part
    REQUIRE(sink.batches.size() == 3);
    CHECK(sink.batches[1].id == 7);
    CHECK_FALSE(sink.batches[1].first);
    CHECK_FALSE(sink.batches[1].final);
    CHECK(sink.batches[2].id == 7);
    CHECK_FALSE(sink.batches[2].first);
    CHECK(sink.batches[2].final);
    CHECK(sink.batches[2].closeReason == CloseReason::kEvents);
    CHECK(sink.batches[2].requests.size() == 1);
    CHECK(b.empty());
    // The next batch starts whole again, and the delay counts from its first request even when
    // everything it holds has been handed on.
    b.add(request(clock, 1, 10));
    b.release();
    clock.advanceMs(50);
    b.poll();
    REQUIRE(sink.batches.size() == 5);
    CHECK(sink.batches[3].id == 8);
    CHECK(sink.batches[3].first);
    CHECK(sink.batches[4].id == 8);
    CHECK(sink.batches[4].final);
    CHECK(sink.batches[4].requests.empty());
    CHECK(sink.batches[4].closeReason == CloseReason::kDelay);
}

TEST_CASE("the final part counts the whole batch's requests and their waits for the close", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(1000, 1 << 20, 100), clock, 1, sink.fn());
    b.add(request(clock, 1, 10));  // waits 100 ms
    clock.advanceMs(30);
    b.add(request(clock, 1, 10));  // 70 ms
    b.release();
    clock.advanceMs(60);
    b.add(request(clock, 1, 10));  // 10 ms
    clock.advanceMs(10);
    b.poll();
    REQUIRE(sink.batches.size() == 2);
    CHECK(sink.batches[0].batchRequests == 0);  // a part that is not final carries no account
    CHECK(sink.batches[1].final);
    CHECK(sink.batches[1].batchRequests == 3);
    CHECK(sink.batches[1].closeWaitNs == 180 * kMs);

    // The next batch starts its own account.
    b.add(request(clock, 1, 10));
    clock.advanceMs(5);
    b.flush();
    REQUIRE(sink.batches.size() == 3);
    CHECK(sink.batches[2].batchRequests == 1);
    CHECK(sink.batches[2].closeWaitNs == 5 * kMs);
}

TEST_CASE("a part is worth releasing once it holds minPartEvents events or minPartBytes bytes", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Limits l = limits(1000, 1 << 20, 100);
    l.minPartEvents = 4;
    l.minPartBytes = 100;
    Batcher b(l, clock, 1, sink.fn());
    CHECK_FALSE(b.worthReleasing());  // nothing open
    b.add(request(clock, 3, 10));
    CHECK(b.unreleased());
    CHECK_FALSE(b.worthReleasing());
    b.add(request(clock, 1, 10));  // 4 events
    CHECK(b.worthReleasing());
    b.release();
    CHECK_FALSE(b.worthReleasing());
    b.add(request(clock, 1, 100));  // one event, but 100 bytes
    CHECK(b.worthReleasing());
}

TEST_CASE("poll(earlyNs) closes a batch whose deadline falls within earlyNs, and no earlier", "[batch]")
{
    ManualClock clock;
    Sink sink;
    Batcher b(limits(1000, 1 << 20, 10), clock, 1, sink.fn());
    Request r = request(clock, 1, 10);
    r.receivedMonoNs -= 1;  // the deadline is 10 ms less 1 ns from now
    b.add(std::move(r));
    clock.advanceMs(8);
    b.poll(kMs - 1);  // 2 ms less 1 ns left
    CHECK(sink.batches.empty());
    clock.advanceMs(1);  // 999,999 ns left
    b.poll();
    CHECK(sink.batches.empty());
    b.poll(kMs - 1);
    REQUIRE(sink.batches.size() == 1);
    CHECK(sink.batches[0].closeReason == CloseReason::kDelay);
}
