// Issue 4's crash test: four acknowledged producers send distinct events while sluiced is
// killed with SIGKILL at random moments and restarted on the same ipc:// endpoint and state
// directory. Every acknowledged event must end up in the database exactly once, no event may be
// there twice, and the database must pass PRAGMA integrity_check after every kill.
//
// The integrity check after a kill runs on a COPY of the database file and its WAL, opened
// read-write so that SQLite recovers the WAL as it would on restart; the original files stay
// exactly as the kill left them, so the restarted daemon does its own recovery (and its own
// quick_check before it accepts events).
//
// Size: 20,000 events and 24 kills by default; SLUICE_CRASH_EVENTS (e.g. 200000) and
// SLUICE_CRASH_KILLS override (meson test -C build --suite slow runs the 200,000-event size).
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include "harness.h"
#include "support.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

size_t fromEnv(const char* name, size_t fallback)
{
    const char* v = std::getenv(name);
    if (!v || !*v)
        return fallback;
    return static_cast<size_t>(std::strtoull(v, nullptr, 10));
}

}  // namespace

TEST_CASE("kill -9 at random moments loses no acknowledged event and duplicates none", "[integration][durability]")
{
    const size_t totalEvents = fromEnv("SLUICE_CRASH_EVENTS", 20'000);
    const size_t kills = std::max<size_t>(fromEnv("SLUICE_CRASH_KILLS", 24), 20);
    constexpr size_t kProducers = 4;
    constexpr size_t kEventsPerRequest = 25;
    const size_t perProducer = totalEvents / kProducers;
    REQUIRE(perProducer >= kEventsPerRequest);

    TempDir dir("sluice-crash");
    auto options = DaemonOptions::acknowledgedOnly(dir, "[batch]\nmax_delay = 20ms\n");
    Daemon daemon(dir, options);
    REQUIRE(daemon.start());

    std::atomic<bool> stop{false};
    TrackedProducer::Options o;
    o.endpoint = daemon.routerEndpoint();
    o.window = 6;
    o.timeoutMs = 300;
    o.maxBackoffMs = 1000;
    auto producers = makeProducers(kProducers, o, "crash-producer");
    std::vector<std::thread> threads;
    JoinOnExit joiner(threads, stop);
    std::atomic<size_t> finished{0};
    for (size_t p = 0; p < kProducers; ++p) {
        threads.emplace_back([&, p] {
            const std::vector<std::string> lines = referenceEvents(100 + p, perProducer);
            for (size_t i = 0; i < lines.size() && !stop; i += kEventsPerRequest)
                if (!producers[p]->send(lines, i, std::min(lines.size(), i + kEventsPerRequest)))
                    break;
            producers[p]->flush();
            ++finished;
        });
    }
    auto acked = [&] {
        uint64_t n = 0;
        for (const auto& p : producers)
            n += p->ackedEvents();
        return n;
    };

    // Kill points: one per stratum of the stream (by acknowledged events), at a random place in
    // it, then after a random delay of up to 60 ms, so that kills land in every phase of a batch
    // (reading, transforming, writing, fsync, replying).
    std::mt19937_64 rng(std::random_device{}());
    std::vector<uint64_t> thresholds;
    const double stride = static_cast<double>(perProducer * kProducers) / static_cast<double>(kills + 1);
    for (size_t k = 0; k < kills; ++k)
        thresholds.push_back(static_cast<uint64_t>(stride * (static_cast<double>(k) + 0.5 +
                                                             std::uniform_real_distribution<double>(0, 1)(rng))));
    std::uniform_int_distribution<int> delayMs(0, 60);

    const auto started = std::chrono::steady_clock::now();
    size_t done = 0;
    std::vector<std::string> integrity;
    for (uint64_t threshold : thresholds) {
        // Generous: only a hung daemon or producer takes this long to make progress.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (acked() < threshold && finished < kProducers && daemon.running() &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        INFO("kill " << done << ": acknowledged " << acked() << " of threshold " << threshold);
        INFO(daemon.log().substr(daemon.log().size() > 4000 ? daemon.log().size() - 4000 : 0));
        REQUIRE(daemon.running());  // it must not exit by itself (e.g. 74 on a duplicate mark)
        REQUIRE(acked() >= threshold);
        REQUIRE(finished < kProducers);  // the kill must land while events are flowing
        std::this_thread::sleep_for(std::chrono::milliseconds(delayMs(rng)));
        daemon.kill9();
        ++done;
        integrity.push_back(integrityCheckOfCopy(daemon.database(), dir.file("scratch")));
        INFO("integrity after kill " << done << ": " << integrity.back());
        REQUIRE(integrity.back() == "ok");
        REQUIRE(daemon.start());
    }
    CHECK(done == kills);

    // Let the producers finish on the last daemon.
    for (auto& t : threads)
        t.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    REQUIRE(daemon.stop(SIGTERM) == 0);
    CHECK(integrityCheck(daemon.database()) == "ok");

    std::set<std::string> ackedIds, sentIds;
    uint64_t requests = 0, retries = 0, duplicates = 0;
    for (const auto& p : producers) {
        for (const std::string& problem : p->problems())
            FAIL_CHECK(problem);
        const ingest::ProducerReport r = p->report();
        CHECK(r.unanswered == 0);
        CHECK(r.failed == 0);
        CHECK(r.rejected == 0);
        retries += r.retries;
        duplicates += r.duplicateReplies;
        const auto sent = p->sent();
        for (const auto& [seq, s] : sent) {
            sentIds.insert(s.eventIds.begin(), s.eventIds.end());
            ++requests;
        }
        size_t notOk = 0, wrongCount = 0;
        for (const auto& [seq, s] : p->settled()) {
            notOk += s.reply.ok ? 0 : 1;
            // A retry answered "duplicate" repeats the original outcome.
            wrongCount += s.reply.accepted == sent.at(seq).events ? 0 : 1;
        }
        CHECK(notOk == 0);
        CHECK(wrongCount == 0);
        const auto ids = p->ackedEventIds();
        ackedIds.insert(ids.begin(), ids.end());
    }
    REQUIRE(sentIds.size() == perProducer * kProducers);
    CHECK(ackedIds.size() == sentIds.size());

    const std::string db = daemon.database();
    const auto counts = eventIdCounts(db, kEventsTable);
    const OnceCheck once = compareOnce(counts, ackedIds);
    CHECK(once.missing == 0);
    CHECK(once.repeated == 0);
    CHECK(once.extra == 0);
    CHECK(counts.size() == ackedIds.size());
    CHECK(queryInt(db, std::string("SELECT count(*) FROM ") + kEventsTable) == static_cast<int64_t>(ackedIds.size()));

    // Exactly once at the request level too: one mark per request, and the batches account for
    // every event once (retries of committed requests count as duplicates, not as committed).
    CHECK(queryInt(db, "SELECT count(*) FROM producer_marks") == static_cast<int64_t>(requests));
    CHECK(queryInt(db, "SELECT sum(committed) FROM batches") == static_cast<int64_t>(ackedIds.size()));
    CHECK(queryInt(db, "SELECT count(*) FROM batches WHERE received != committed + duplicates + rejected") == 0);
    // Derived rows and aggregates were committed with their events, never twice.
    CHECK(queryInt(db, "SELECT count(*) FROM (SELECT event_id FROM analytics GROUP BY event_id "
                       "HAVING count(*) > 1)") == 0);
    CHECK(queryInt(db, "SELECT count(*) FROM derived_analytics d LEFT JOIN " + std::string(kEventsTable) +
                           " e ON e.seq = d.event_seq WHERE e.seq IS NULL") == 0);
    CHECK(queryInt(db, "SELECT (SELECT coalesce(sum(count), 0) FROM agg_revenue_by_country) + "
                       "(SELECT coalesce(sum(events), 0) FROM late_events)") ==
          static_cast<int64_t>(ackedIds.size()));

    std::printf("crash test: %zu events, %zu kills, %llu requests (%llu retries, %llu answered duplicate) in %.1f s\n",
                ackedIds.size(), done, static_cast<unsigned long long>(requests),
                static_cast<unsigned long long>(retries), static_cast<unsigned long long>(duplicates), seconds);
}
