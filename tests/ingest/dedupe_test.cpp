// DedupeIndex: new, duplicate (in flight or committed), stale below the window, the window
// sliding over its ring, startup from stored marks, forgetting idle producers.
#include <catch2/catch.hpp>

#include "ingest/dedupe.h"

using namespace sluice::ingest;
using V = DedupeIndex::Verdict;

namespace {

const char* name(V v)
{
    switch (v) {
    case V::kNew: return "new";
    case V::kDuplicate: return "duplicate";
    case V::kStale: return "stale";
    }
    return "?";
}

// Admits and commits at once, as a request whose batch committed.
void applied(DedupeIndex& d, const char* producer, uint64_t seq, int64_t now = 0)
{
    REQUIRE(std::string(name(d.admit(producer, seq, now))) == "new");
    d.committed(producer, seq);
}

}  // namespace

TEST_CASE("the window is rounded up to a multiple of 64", "[ingest][dedupe]")
{
    CHECK(DedupeIndex(0).window() == 64);
    CHECK(DedupeIndex(1).window() == 64);
    CHECK(DedupeIndex(64).window() == 64);
    CHECK(DedupeIndex(65).window() == 128);
    CHECK(DedupeIndex(1000).window() == 1024);
}

TEST_CASE("new, duplicate while in flight, duplicate once committed", "[ingest][dedupe]")
{
    DedupeIndex d(64);
    CHECK(name(d.admit("p", 7, 1)) == std::string("new"));
    CHECK(name(d.admit("p", 7, 2)) == std::string("duplicate"));  // in flight
    d.committed("p", 7);
    CHECK(name(d.admit("p", 7, 3)) == std::string("duplicate"));  // committed
    CHECK(name(d.admit("p", 8, 4)) == std::string("new"));
    CHECK(d.producers() == 1);
    // Sequence 0 and the largest sequence number are ordinary.
    CHECK(name(d.admit("q", 0, 1)) == std::string("new"));
    CHECK(name(d.admit("q", 0, 1)) == std::string("duplicate"));
    CHECK(name(d.admit("r", INT64_MAX, 1)) == std::string("new"));
    CHECK(name(d.admit("r", INT64_MAX, 1)) == std::string("duplicate"));
    CHECK(d.producers() == 3);
}

TEST_CASE("producers are independent", "[ingest][dedupe]")
{
    DedupeIndex d(64);
    applied(d, "a", 1);
    CHECK(name(d.admit("b", 1, 0)) == std::string("new"));
    CHECK(name(d.admit("a", 1, 0)) == std::string("duplicate"));
    CHECK(name(d.admit("A", 1, 0)) == std::string("new"));  // names are exact
    applied(d, "b", 500);
    CHECK(name(d.admit("a", 2, 0)) == std::string("new"));  // b's high mark does not slide a's window
}

TEST_CASE("the window is the highest sequence number and exactly `window` below it", "[ingest][dedupe]")
{
    // The documented default: 65,536 sequence numbers below the highest are remembered.
    DedupeIndex d(65536);
    applied(d, "p", 0);
    applied(d, "p", 65536);
    CHECK(d.windowStart("p") == 0);
    CHECK(name(d.admit("p", 0, 0)) == std::string("duplicate"));
    applied(d, "p", 65537);
    CHECK(name(d.admit("p", 0, 0)) == std::string("stale"));
    CHECK(name(d.admit("p", 1, 0)) == std::string("new"));
    CHECK(name(d.admit("p", 65536, 0)) == std::string("duplicate"));
}

TEST_CASE("out-of-order requests within the window are new once", "[ingest][dedupe]")
{
    DedupeIndex d(64);
    applied(d, "p", 10);
    CHECK(name(d.admit("p", 5, 0)) == std::string("new"));
    CHECK(name(d.admit("p", 5, 0)) == std::string("duplicate"));
    d.committed("p", 5);
    CHECK(name(d.admit("p", 5, 0)) == std::string("duplicate"));
    CHECK(name(d.admit("p", 9, 0)) == std::string("new"));
    CHECK(d.windowStart("p") == 0);
}

TEST_CASE("below the window a sequence number is stale", "[ingest][dedupe]")
{
    DedupeIndex d(64);
    applied(d, "p", 200);
    CHECK(d.windowStart("p") == 136);
    CHECK(name(d.admit("p", 135, 0)) == std::string("stale"));  // 200 - 135 = 65: outside
    CHECK(name(d.admit("p", 0, 0)) == std::string("stale"));
    CHECK(name(d.admit("p", 136, 0)) == std::string("new"));    // 200 - 136 = 64: inside, never seen
    CHECK(d.windowStart("unknown") == 0);
}

TEST_CASE("the window slides: old marks leave it, reused ring slots start clear", "[ingest][dedupe]")
{
    DedupeIndex d(64);
    for (uint64_t s = 0; s < 64; ++s)
        applied(d, "p", s);
    CHECK(d.windowStart("p") == 0);
    for (uint64_t s = 0; s < 64; ++s)
        CHECK(name(d.admit("p", s, 0)) == std::string("duplicate"));

    // 64 below the highest are remembered: with 64 in flight, 0 is still a duplicate.
    CHECK(name(d.admit("p", 64, 0)) == std::string("new"));
    CHECK(d.windowStart("p") == 0);
    CHECK(name(d.admit("p", 0, 0)) == std::string("duplicate"));
    // 65 pushes 0 out: 0 is now stale, 1..63 still duplicates, 64 in flight.
    CHECK(name(d.admit("p", 65, 0)) == std::string("new"));
    CHECK(d.windowStart("p") == 1);
    CHECK(name(d.admit("p", 0, 0)) == std::string("stale"));
    CHECK(name(d.admit("p", 1, 0)) == std::string("duplicate"));
    CHECK(name(d.admit("p", 63, 0)) == std::string("duplicate"));
    CHECK(name(d.admit("p", 64, 0)) == std::string("duplicate"));
    d.committed("p", 64);
    CHECK(name(d.admit("p", 64, 0)) == std::string("duplicate"));

    // A jump lands on slots that remembered older numbers: those must not read as duplicates.
    // The ring holds the highest number and the 64 below it: 128 slots.
    DedupeIndex e(64);
    applied(e, "p", 5);
    CHECK(name(e.admit("p", 133, 0)) == std::string("new"));  // 133 % 128 == 5
    CHECK(name(e.admit("p", 5, 0)) == std::string("stale"));
    CHECK(name(e.admit("p", 134, 0)) == std::string("new"));
    // A partial slide clears exactly the slots it passes: 133 was skipped by the jump to 134, and
    // its slot (5's) must not say "seen".
    DedupeIndex f(64);
    applied(f, "p", 5);
    applied(f, "p", 100);
    CHECK(name(f.admit("p", 134, 0)) == std::string("new"));
    CHECK(name(f.admit("p", 133, 0)) == std::string("new"));
    CHECK(name(f.admit("p", 100, 0)) == std::string("duplicate"));
    CHECK(name(f.admit("p", 69, 0)) == std::string("stale"));  // 134 - 69 = 65
    CHECK(name(f.admit("p", 70, 0)) == std::string("new"));    // 134 - 70 = 64

    // A jump of more than the whole ring clears everything remembered.
    applied(e, "p", 140);
    CHECK(name(e.admit("p", 1000, 0)) == std::string("new"));
    CHECK(name(e.admit("p", 140, 0)) == std::string("stale"));
    CHECK(name(e.admit("p", 999, 0)) == std::string("new"));
    CHECK(name(e.admit("p", 1000 - 64, 0)) == std::string("new"));
}

TEST_CASE("a request committed after the window passed it is not remembered", "[ingest][dedupe]")
{
    DedupeIndex d(64);
    CHECK(name(d.admit("p", 1, 0)) == std::string("new"));
    applied(d, "p", 100);
    d.committed("p", 1);  // its batch committed late
    CHECK(name(d.admit("p", 1, 0)) == std::string("stale"));
    CHECK(name(d.admit("p", 36, 0)) == std::string("new"));  // 100 - 36 = 64
}

TEST_CASE("load() rebuilds the index from stored marks at startup", "[ingest][dedupe]")
{
    DedupeIndex d(64);
    // Marks arrive ordered by producer and sequence (store::forEachMark).
    d.load("p", 5, 1000);
    d.load("p", 7, 1000);
    d.load("q", 300, 1000);
    CHECK(d.producers() == 2);
    CHECK(name(d.admit("p", 5, 2000)) == std::string("duplicate"));
    CHECK(name(d.admit("p", 6, 2000)) == std::string("new"));
    CHECK(name(d.admit("p", 7, 2000)) == std::string("duplicate"));
    CHECK(name(d.admit("p", 8, 2000)) == std::string("new"));
    CHECK(name(d.admit("q", 300, 2000)) == std::string("duplicate"));
    CHECK(name(d.admit("q", 200, 2000)) == std::string("stale"));
    CHECK(d.windowStart("q") == 236);

    // Marks below the window of a later one are not remembered; order does not matter.
    DedupeIndex e(64);
    e.load("p", 1000, 0);
    e.load("p", 10, 0);
    e.load("p", 990, 0);
    CHECK(name(e.admit("p", 10, 0)) == std::string("stale"));
    CHECK(name(e.admit("p", 990, 0)) == std::string("duplicate"));
    CHECK(name(e.admit("p", 991, 0)) == std::string("new"));
}

TEST_CASE("forgetIdle forgets producers silent since the cutoff, unless requests are in flight", "[ingest][dedupe]")
{
    DedupeIndex d(64);
    applied(d, "old", 1, 100);
    applied(d, "recent", 1, 900);
    CHECK(name(d.admit("busy", 1, 100)) == std::string("new"));  // in flight
    d.load("loaded", 3, 50);

    CHECK(d.forgetIdle(500) == 2);  // "old" and "loaded"
    CHECK(d.producers() == 2);
    // A forgotten producer starts afresh: its old sequence numbers are new again.
    CHECK(name(d.admit("old", 1, 1000)) == std::string("new"));
    CHECK(name(d.admit("recent", 1, 1000)) == std::string("duplicate"));
    CHECK(name(d.admit("busy", 1, 1000)) == std::string("duplicate"));

    // Once their requests commit, idle producers can be forgotten.
    d.committed("busy", 1);
    d.committed("old", 1);
    CHECK(d.forgetIdle(2000) == 3);
    CHECK(d.producers() == 0);
    CHECK(d.forgetIdle(5000) == 0);
}

TEST_CASE("the cutoff is exclusive: a producer seen at the cutoff stays", "[ingest][dedupe]")
{
    DedupeIndex d(64);
    applied(d, "p", 1, 500);
    CHECK(d.forgetIdle(500) == 0);
    CHECK(d.forgetIdle(501) == 1);
}
