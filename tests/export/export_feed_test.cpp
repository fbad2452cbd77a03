#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "export/export_feed.h"

using namespace sluice;
using namespace sluice::exports;

namespace {

SharedRecords records(size_t n, size_t valueBytes = 10)
{
    auto v = std::make_shared<RecordSet>();
    const std::string value(valueBytes, 'x');
    for (size_t i = 0; i < n; ++i)
        v->add(static_cast<int64_t>(i + 1), "", value);
    return v;
}

}  // namespace

TEST_CASE("export feed: each other reader of a source takes a batch once, then it goes", "[export]")
{
    ExportFeed feed;
    feed.setReaders({{"contract a", 3}, {"keys", 1}});
    const SharedRecords read = records(4);
    feed.offer(1, "contract a", read);
    CHECK(feed.entries() == 1);
    const SharedRecords second = feed.take(1, "contract a");
    CHECK(second == read);  // the same records, not a copy
    CHECK(feed.entries() == 1);
    CHECK(feed.take(1, "contract a") == read);
    CHECK(feed.entries() == 0);  // the third reader took it: gone
    CHECK(feed.bytes() == 0);
    CHECK(feed.take(1, "contract a") == nullptr);
    // A source with one reader keeps nothing.
    feed.offer(1, "keys", records(2));
    CHECK(feed.entries() == 0);
    // Another source, or another batch, is another entry.
    CHECK(feed.take(2, "contract a") == nullptr);
}

TEST_CASE("export feed: what a laggard reads again is not kept, and the budget drops the oldest", "[export]")
{
    ExportFeed feed(1000);
    feed.setReaders({{"s", 2}});
    // Over the budget while nobody takes anything: the oldest batches go first.
    feed.offer(6, "s", records(4, 100));
    feed.offer(7, "s", records(4, 100));
    feed.offer(8, "s", records(4, 100));
    CHECK(feed.bytes() <= 1000);
    CHECK(feed.take(6, "s") == nullptr);
    CHECK(feed.take(8, "s") != nullptr);
    // Batch 3 is older than what the feed already had: a re-read, not kept.
    feed.offer(3, "s", records(1));
    CHECK(feed.take(3, "s") == nullptr);
    // Other readers now: the entries start again.
    feed.offer(9, "s", records(1));
    feed.setReaders({{"s", 3}});
    CHECK(feed.entries() == 0);
}

TEST_CASE("export feed: an exporter ahead waits while the others take, not when they stop", "[export]")
{
    using std::chrono::milliseconds;
    using std::chrono::steady_clock;
    const int leader = 0, laggard = 0;
    const size_t one = records(4, 400)->bytes();
    ExportFeed feed(2 * one - 1);
    feed.setReaders({{"s", 2}, {"t", 2}});
    feed.offer(1, "s", records(4, 400), 0, &leader);
    CHECK(feed.take(1, "s") != nullptr);  // a laggard is taking
    // At the budget while the laggard takes: nothing is dropped yet.
    feed.offer(2, "s", records(4, 400), 0, &leader);
    feed.offer(3, "s", records(4, 400), 0, &leader);
    REQUIRE(feed.entries() == 2);
    // The laggard has something to take after batch 1: it never waits.
    CHECK_FALSE(feed.waitForRoom(1, {"s"}, &laggard, milliseconds(20'000)));
    // The leader, at batch 3, waits until the laggard has taken enough.
    std::atomic<bool> returned{false}, waited{false};
    std::thread leaderThread([&] {
        waited = feed.waitForRoom(3, {"s"}, &leader, milliseconds(20'000));
        returned = true;
    });
    std::this_thread::sleep_for(milliseconds(200));
    CHECK_FALSE(returned.load());
    CHECK(feed.take(2, "s") != nullptr);
    leaderThread.join();
    CHECK(waited.load());
    // A laggard that stops taking is waited for kPaceMs, not maxWait...
    feed.offer(4, "s", records(4, 400), 0, &leader);
    const auto start = steady_clock::now();
    CHECK(feed.waitForRoom(4, {"t"}, &leader, milliseconds(20'000)));
    CHECK(steady_clock::now() - start < milliseconds(10'000));
    // ... and then what is beyond the budget goes.
    feed.offer(5, "s", records(4, 400), 0, &leader);
    CHECK(feed.bytes() < 2 * one);
    CHECK(feed.take(3, "s") == nullptr);
}

TEST_CASE("export feed: inside a batch, the leader's own pieces do not count as something to take", "[export]")
{
    using std::chrono::milliseconds;
    const int leader = 0;
    const size_t one = records(4, 400)->bytes();
    ExportFeed feed(2 * one - 1);
    feed.setReaders({{"s", 2}});
    feed.offer(4, "s", records(4, 400), 0, &leader);
    CHECK(feed.take(4, "s") != nullptr);  // a laggard is taking
    // The leader is inside batch 5 (last whole batch: 4) and offered two pieces of it.
    feed.offer(5, "s", records(4, 400), 1, &leader);
    feed.offer(5, "s", records(4, 400), 8, &leader);
    std::atomic<bool> returned{false}, waited{false};
    std::thread leaderThread([&] {
        waited = feed.waitForRoom(4, {"s"}, &leader, milliseconds(20'000));
        returned = true;
    });
    std::this_thread::sleep_for(milliseconds(200));
    CHECK_FALSE(returned.load());  // it waits for the laggard instead of reading on
    CHECK(feed.take(5, "s", 1) != nullptr);
    leaderThread.join();
    CHECK(waited.load());
    CHECK(feed.take(5, "s", 8) != nullptr);  // nothing was dropped
}

TEST_CASE("export feed: a dead laggard does not hold the exporters that keep up", "[export]")
{
    using std::chrono::milliseconds;
    using std::chrono::steady_clock;
    const int leader = 0;
    const size_t one = records(4, 400)->bytes();
    ExportFeed feed(2 * one - 1);
    feed.setReaders({{"s", 3}});  // a leader, a follower that keeps up, a laggard that is down
    const auto start = steady_clock::now();
    bool waited = false;
    for (uint64_t b = 1; b <= 6; ++b) {
        // The leader never waits: entries only go when the laggard takes them, and it does not.
        waited |= feed.waitForRoom(b - 1, {"s"}, &leader, milliseconds(20'000));
        feed.offer(b, "s", records(4, 400), 0, &leader);
        CHECK(feed.take(b, "s") != nullptr);  // the follower
        CHECK(feed.bytes() < 2 * one);
    }
    CHECK_FALSE(waited);
    CHECK(steady_clock::now() - start < milliseconds(900));
}

TEST_CASE("export feed: a source whose exporter is down does not hold the exporters of other sources", "[export]")
{
    using std::chrono::milliseconds;
    using std::chrono::steady_clock;
    // F exports s and t, K exports s and keeps up, X exports t and is down.
    const int f = 0;
    const size_t one = records(4, 400)->bytes();
    ExportFeed feed(2 * one - 1);
    feed.setReaders({{"s", 2}, {"t", 2}});
    feed.offer(1, "s", records(4, 400), 0, &f);
    CHECK(feed.take(1, "s") != nullptr);  // K is moving; X has taken nothing for a while
    const auto start = steady_clock::now();
    bool waited = false;
    for (uint64_t b = 2; b <= 7; ++b) {
        waited |= feed.waitForRoom(b - 1, {"s", "t"}, &f, milliseconds(20'000));
        feed.offer(b, "s", records(4, 400), 0, &f);
        feed.offer(b, "t", records(4, 400), 0, &f);
        CHECK(feed.take(b, "s") != nullptr);  // K: s keeps moving
        // What waits for X goes first when over the budget.
        CHECK(feed.bytes() <= 2 * one);
    }
    CHECK_FALSE(waited);  // K's progress is no reason to wait for t's entries
    CHECK(steady_clock::now() - start < milliseconds(900));
}

TEST_CASE("export feed: a source's fingerprint changes with what shapes its JSON", "[export]")
{
    PipelineSpec p;
    OutputSpec o;
    o.name = "analytics";
    o.contract = "acme/checkout/1.0.0";
    o.maskedFields = {"email"};
    p.outputs.push_back(o);
    ExportSourceSpec s;
    s.kind = ExportSourceSpec::Kind::kOutput;
    s.name = "analytics";
    const std::string before = sourceFingerprint(p, s);
    p.outputs[0].maskedFields = {"email", "ip"};
    CHECK(sourceFingerprint(p, s) != before);
    ExportSourceSpec c;
    c.kind = ExportSourceSpec::Kind::kContract;
    c.name = "acme/checkout/1.0.0";
    CHECK(sourceFingerprint(p, c) != sourceFingerprint(p, s));
    CHECK(sourceFingerprint(p, c) != kKeysFingerprint);
}
