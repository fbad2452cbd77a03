// Issue 4's replay test: after a run, the producer resends its whole log (same producer id, same
// sequence numbers, same bodies). Every reply is "ok", "duplicate", with the original counts,
// and the database does not change: every table except `batches` keeps exactly its content
// (events, derived rows, aggregates with their count/sum/sketch columns, late events, keys,
// dead letters, producer marks...). `batches` gains batches that account for every resent
// event as a duplicate and commit nothing.
//
// The log is replayed twice: to the daemon that took it (dedupe from memory), and after a
// restart (dedupe from the producer marks in the database).
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>

#include "harness.h"
#include "support.h"
#include "workload/generator.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

struct Request {
    std::string body;
    uint32_t events = 0;
    std::vector<std::string> eventIds;
};

// The daemon is never down in this test: a request unanswered for this long means it stopped.
constexpr int64_t kGiveUpMs = 20'000;

// What the first run answered, by seq.
using Outcomes = std::map<uint64_t, ingest::Reply>;

void replay(const std::string& endpoint, const std::vector<Request>& log, const Outcomes& original)
{
    TrackedProducer::Options o;
    o.endpoint = endpoint;
    o.producerId = "replay-producer";
    o.window = 16;
    o.timeoutMs = 2000;
    o.giveUpMs = kGiveUpMs;
    TrackedProducer producer(o);
    for (const Request& r : log) {
        REQUIRE(producer.sendBody(r.body, r.events, r.eventIds));
        REQUIRE(producer.report().unanswered == 0);  // fail fast when the daemon stops answering
    }
    REQUIRE(producer.flush());
    for (const std::string& problem : producer.problems())
        FAIL_CHECK(problem);
    const auto settled = producer.settled();
    REQUIRE(settled.size() == log.size());
    size_t notDuplicate = 0, differentCounts = 0;
    for (const auto& [seq, s] : settled) {
        const ingest::Reply& before = original.at(seq);
        if (!s.reply.ok || !s.reply.duplicate)
            ++notDuplicate;
        if (s.reply.accepted != before.accepted || s.reply.rejected != before.rejected)
            ++differentCounts;
    }
    CHECK(notDuplicate == 0);
    CHECK(differentCounts == 0);
    CHECK(producer.report().unanswered == 0);
}

void checkUnchanged(const std::map<std::string, std::string>& before, const std::map<std::string, std::string>& after)
{
    REQUIRE(before.size() == after.size());
    for (const auto& [table, content] : before) {
        INFO("table " << table);
        REQUIRE(after.count(table));
        CHECK(after.at(table).size() == content.size());
        CHECK((after.at(table) == content));
    }
}

}  // namespace

TEST_CASE("resending a whole producer log changes nothing but the batch log", "[integration][durability]")
{
    TempDir dir("sluice-replay");
    auto options = DaemonOptions::acknowledgedOnly(dir, "[batch]\nmax_delay = 20ms\n");
    Daemon daemon(dir, options);
    REQUIRE(daemon.start());
    const std::string db = daemon.database();

    // 2,000 events with 5% invalid ones (dead letters) and event times spread over minutes with
    // jitter beyond the allowed lateness (late events), so every table has rows.
    workload::Options wo;
    wo.seed = 21;
    wo.invalidFraction = 0.05;
    wo.baseTimeMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count() -
                    15 * 60'000;
    wo.stepMs = 200;
    wo.jitterMs = 45'000;
    workload::Generator generator(wo);
    std::vector<Request> log(200);
    uint64_t totalEvents = 0;
    for (Request& r : log) {
        std::string line;
        for (int i = 0; i < 10; ++i) {
            line.clear();
            generator.next(line);
            r.body += line + "\n";
            r.eventIds.push_back(eventIdOf(line));
            ++r.events;
        }
        totalEvents += r.events;
    }

    Outcomes original;
    {
        TrackedProducer::Options o;
        o.endpoint = daemon.routerEndpoint();
        o.producerId = "replay-producer";
        o.window = 16;
        o.timeoutMs = 2000;
        o.giveUpMs = kGiveUpMs;
        TrackedProducer producer(o);
        for (const Request& r : log) {
            REQUIRE(producer.sendBody(r.body, r.events, r.eventIds));
            REQUIRE(producer.report().unanswered == 0);
        }
        REQUIRE(producer.flush());
        REQUIRE(producer.report().unanswered == 0);
        for (const std::string& problem : producer.problems())
            FAIL_CHECK(problem);
        for (const auto& [seq, s] : producer.settled()) {
            CHECK(s.reply.ok);
            CHECK_FALSE(s.reply.duplicate);
            original[seq] = s.reply;
        }
        REQUIRE(original.size() == log.size());
    }
    // The first run left something in every table the replay could disturb.
    for (const char* table : {kEventsTable, "derived_analytics", "agg_revenue_by_country", "late_events", "keys",
                              "rejects", "producer_marks"})
        CHECK(queryInt(db, std::string("SELECT count(*) FROM ") + table) > 0);
    CHECK(queryInt(db, "SELECT sum(committed + rejected) FROM batches") == static_cast<int64_t>(totalEvents));

    auto batchesAfter = [&](int64_t id) {
        return queryRows(db, "SELECT count(*), coalesce(sum(received), 0), coalesce(sum(duplicates), 0), "
                             "coalesce(sum(committed), 0), coalesce(sum(rejected), 0), coalesce(sum(keys_created), 0) "
                             "FROM batches WHERE id > " +
                                 std::to_string(id))
            .at(0);
    };
    const std::vector<std::string> expectedNew = {std::to_string(totalEvents), std::to_string(totalEvents), "0", "0",
                                                  "0"};

    for (int round = 0; round < 2; ++round) {
        INFO((round == 0 ? "replay to the running daemon" : "replay after a restart"));
        if (round == 1) {
            REQUIRE(daemon.stop(SIGTERM) == 0);
            REQUIRE(daemon.start());
        }
        const auto before = tableContents(db, {"batches"});
        const int64_t lastBatch = queryInt(db, "SELECT max(id) FROM batches");
        replay(daemon.routerEndpoint(), log, original);
        checkUnchanged(before, tableContents(db, {"batches"}));
        const auto added = batchesAfter(lastBatch);
        CHECK(std::stoll(added[0]) > 0);
        CHECK(std::vector<std::string>(added.begin() + 1, added.end()) == expectedNew);
    }
    REQUIRE(daemon.stop(SIGTERM) == 0);
    CHECK(integrityCheck(db) == "ok");
}
