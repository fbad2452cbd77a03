// Periodic upkeep: retention shredding by contract, derived rows and subject links by age,
// dead-letter expiry with their day keys, producer-mark pruning.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>

#include "fixtures.h"
#include "store/key_table.h"
#include "store/maintenance.h"

using namespace sluice;
using namespace sluice::store;
using namespace sluice::store::testing;

namespace {

constexpr int64_t kDay = 86'400'000;
constexpr const char* kKeepRef = "t/keep/1.0.0";

// Batches record their commit time from the system clock, so plans are built around it.
int64_t realNow()
{
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::vector<std::string> sorted(std::vector<std::string> v)
{
    std::sort(v.begin(), v.end());
    return v;
}

struct Fixture {
    TempDir dir;
    std::unique_ptr<BatchWriter> writer = openWriterWithSchema(dir.file("s.db"));
    const int64_t now = realNow();

    Fixture()
    {
        // Batch 1: keys of a contract with 30 days retention and of one kept for ever, day keys
        // of dead letters, derived rows, subject links.
        BatchBuilder b(1);
        b.key("a-old", 1, "data", now - 31 * kDay, now - 30 * kDay, kRef);
        b.key("a-new", 2, "data", now - 29 * kDay, now - 28 * kDay, kRef);
        b.key("b-old", 3, "data", now - 400 * kDay, now - 399 * kDay, kKeepRef);
        b.key("dl-old", 4, "dead_letter", now - 9 * kDay, now - 8 * kDay, "");
        b.key("dl-new", 5, "dead_letter", now - 1 * kDay, now + 1 * kDay, "");
        b.subject("a-old", 1);
        b.subject("a-new", 2);
        b.derived(b.event("e1", "a-old", "NL", 1.0), "a-old", "alice");
        b.derived(b.event("e2", "a-new", "NL", 1.0), "a-new", "bob");
        b.deadLetter(Reason::kNotJson, "not JSON", "", -1, -1, "copy", "dl-old", now - 8 * kDay - 1000);
        b.deadLetter(Reason::kNotJson, "not JSON", "", -1, -1, "copy", "dl-new", now - 1 * kDay);
        for (uint64_t s = 1; s <= 10; ++s)
            b.mark("p", s);
        b.mark("q", 5);
        commitOk(*writer, b.take());
    }

    MaintenancePlan plan(int64_t at)
    {
        MaintenancePlan p;
        p.nowMs = at;
        p.keyLifetimeMs = 1 * kDay;
        p.retention = {RetentionRule{kRef, 30, {kDerivedTable}}, RetentionRule{kKeepRef, 0, {}}};
        p.deadLetterRetentionMs = 7 * kDay;
        p.dedupeWindow = 4;
        p.dedupeRetentionMs = 1 * kDay;
        return p;
    }

    Db& db() { return writer->db(); }
};

}  // namespace

TEST_CASE("maintenance shreds keys past their contract's retention, and only those", "[store][maintenance]")
{
    Fixture f;
    auto report = runMaintenance(f.db(), f.plan(f.now));
    INFO((report.isOk() ? "" : report.status().message()));
    REQUIRE(report.isOk());
    CHECK(sorted(report->shredded.keyLinks) == std::vector<std::string>{"a-old", "dl-old"});
    CHECK(report->shredded.keys == 2);
    CHECK(count(f.db(), "keys", "key_link = 'a-old'") == 0);
    CHECK(count(f.db(), "keys", "key_link = 'a-new'") == 1);
    CHECK(count(f.db(), "keys", "key_link = 'b-old'") == 1);  // retention 0: kept for ever
    CHECK(count(f.db(), "keys", "key_link = 'dl-new'") == 1);
    CHECK(queryInt(f.db(), "SELECT count(*) FROM shred_log WHERE cause = 'retention'") >= 1);
    CHECK(queryInt(f.db(), "SELECT count(*) FROM shred_log WHERE key_links LIKE '%a-old%'") == 1);
    // Everything was committed: a second pass finds nothing more to do.
    auto again = runMaintenance(f.db(), f.plan(f.now));
    REQUIRE(again.isOk());
    CHECK(again->shredded.keys == 0);
    CHECK(again->deadLetters == 0);
    CHECK(again->marks == 0);
}

TEST_CASE("maintenance expires dead letters and the day keys of their copies", "[store][maintenance]")
{
    Fixture f;
    auto report = runMaintenance(f.db(), f.plan(f.now));
    REQUIRE(report.isOk());
    CHECK(report->deadLetters == 1);
    CHECK(count(f.db(), "rejects") == 1);
    CHECK(queryText(f.db(), "SELECT input_key_link FROM rejects") == "dl-new");
    CHECK(count(f.db(), "keys", "key_link = 'dl-old'") == 0);
}

TEST_CASE("maintenance prunes marks below each producer's window and forgets silent producers",
          "[store][maintenance]")
{
    Fixture f;
    auto report = runMaintenance(f.db(), f.plan(f.now));
    REQUIRE(report.isOk());
    // p's highest is 10 with a window of 4: 10 and the 4 below it (6..10) are kept. q has one
    // mark, within its window.
    CHECK(report->marks == 5);
    CHECK(queryText(f.db(), "SELECT group_concat(seq) FROM (SELECT seq FROM producer_marks WHERE producer = 'p' "
                            "ORDER BY seq)") == "6,7,8,9,10");
    CHECK(count(f.db(), "producer_marks", "producer = 'q'") == 1);

    // Two days later both producers have been silent longer than the retention (1 day).
    auto later = runMaintenance(f.db(), f.plan(f.now + 2 * kDay));
    REQUIRE(later.isOk());
    CHECK(later->marks == 6);
    CHECK(count(f.db(), "producer_marks") == 0);
}

TEST_CASE("maintenance deletes derived rows once older than retention minus the key lifetime",
          "[store][maintenance]")
{
    Fixture f;
    // Today: the derived rows were written just now.
    auto today = runMaintenance(f.db(), f.plan(f.now));
    REQUIRE(today.isOk());
    CHECK(today->derivedRows == 0);
    CHECK(count(f.db(), kDerivedTable) == 2);
    CHECK(count(f.db(), kEventsTable) == 2);

    // 30 days on (retention 30 days, key lifetime 1 day): rows older than 29 days go, whatever
    // their key; the encrypted events stay.
    auto later = runMaintenance(f.db(), f.plan(f.now + 30 * kDay));
    REQUIRE(later.isOk());
    CHECK(later->derivedRows == 2);
    CHECK(count(f.db(), kDerivedTable) == 0);
    CHECK(count(f.db(), kEventsTable) == 2);
    CHECK(count(f.db(), "keys", "key_link = 'a-new'") == 0);
    // Subject links stay while a contract keeps its keys for ever.
    CHECK(count(f.db(), "key_subjects") == 2);
}

TEST_CASE("maintenance deletes subject links older than the longest retention", "[store][maintenance]")
{
    Fixture f;
    MaintenancePlan p = f.plan(f.now + 31 * kDay);
    p.retention = {RetentionRule{kRef, 30, {kDerivedTable}}};  // every contract's keys expire
    auto report = runMaintenance(f.db(), p);
    REQUIRE(report.isOk());
    CHECK(report->subjectLinks == 2);
    CHECK(count(f.db(), "key_subjects") == 0);
    CHECK(count(f.db(), "keys", "kind = 'data' AND contract = 't/shop/1.0.0'") == 0);
    CHECK(count(f.db(), "keys", "key_link = 'b-old'") == 1);  // not in the plan: not touched
}

TEST_CASE("lastBatchBefore finds the last batch committed before a time", "[store][maintenance]")
{
    Fixture f;
    CHECK(*lastBatchBefore(f.db(), f.now - kDay) == 0);
    CHECK(*lastBatchBefore(f.db(), f.now + kDay) == 1);
}
