// Issue 2 item 9 with acknowledged producers: while events flow, SIGTERM makes sluiced stop
// reading, commit the open batch, answer, and exit 0 within 5 s. Every request answered before
// the exit is in the database; the requests left unanswered are retried by their producers
// after a restart and land exactly once.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "harness.h"
#include "support.h"

using namespace sluice;
using namespace sluice::testing;

TEST_CASE("SIGTERM under load drains within 5 s; unanswered requests land once after a restart",
          "[integration][durability]")
{
    constexpr size_t kProducers = 3;
    constexpr size_t kEventsPerProducer = 20'000;  // more than the producers send before SIGTERM
    constexpr size_t kPerRequest = 20;

    TempDir dir("sluice-drain");
    auto options = DaemonOptions::acknowledgedOnly(dir);
    Daemon daemon(dir, options);  // the default batch bounds (200 ms): the open batch is worth draining
    REQUIRE(daemon.start());

    TrackedProducer::Options o;
    o.endpoint = daemon.routerEndpoint();
    o.window = 8;
    o.timeoutMs = 500;
    o.maxBackoffMs = 1000;
    auto producers = makeProducers(kProducers, o, "drain-producer");
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    JoinOnExit joiner(threads, stop);
    for (size_t p = 0; p < kProducers; ++p) {
        threads.emplace_back([&, p] {
            const std::vector<std::string> lines = referenceEvents(300 + p, kEventsPerProducer);
            for (size_t i = 0; i < lines.size() && !stop; i += kPerRequest)
                if (!producers[p]->send(lines, i, i + kPerRequest))
                    break;
            producers[p]->flush();
        });
    }
    auto acked = [&] {
        uint64_t n = 0;
        for (const auto& p : producers)
            n += p->ackedEvents();
        return n;
    };

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (acked() < 3000 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(acked() >= 3000);

    const auto termAt = std::chrono::steady_clock::now();
    const int code = daemon.stop(SIGTERM, std::chrono::seconds(5));  // -2: still running after 5 s
    const double exitMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - termAt).count();
    INFO(daemon.log());
    REQUIRE(code == 0);
    CHECK(daemon.log().find("stopped after draining") != std::string::npos);
    stop = true;  // no new requests; those in flight keep being retried

    // Replies the daemon sent before it exited are in the producers' sockets: let the producer
    // threads read them, then take what was acknowledged.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    std::set<std::string> ackedAtExit;
    size_t unanswered = 0;
    for (const auto& p : producers) {
        const auto ids = p->ackedEventIds();
        ackedAtExit.insert(ids.begin(), ids.end());
        unanswered += p->outstanding();
    }
    std::printf("drain: exit 0 after %.0f ms; %zu events acknowledged before exit, %zu requests unanswered\n", exitMs,
                ackedAtExit.size(), unanswered);
    // A producer sends its next request as soon as a reply frees its window, and the draining
    // daemon no longer reads: at least one request per producer must be left unanswered.
    CHECK(unanswered >= kProducers);

    const std::string db = daemon.database();
    {
        const OnceCheck once = compareOnce(eventIdCounts(db, kEventsTable), ackedAtExit);
        CHECK(once.missing == 0);
        CHECK(once.repeated == 0);
        // The drain acknowledged everything it committed: no request is committed but unanswered.
        CHECK(once.extra == 0);
    }

    REQUIRE(daemon.start());
    for (auto& t : threads)
        t.join();
    REQUIRE(daemon.stop(SIGTERM, std::chrono::seconds(5)) == 0);

    std::set<std::string> sentIds;
    for (const auto& p : producers) {
        for (const std::string& problem : p->problems())
            FAIL_CHECK(problem);
        CHECK(p->report().unanswered == 0);
        CHECK(p->outstanding() == 0);
        size_t notOk = 0;
        for (const auto& [seq, s] : p->settled())
            notOk += s.reply.ok && s.reply.accepted == kPerRequest ? 0 : 1;
        CHECK(notOk == 0);
        for (const auto& [seq, s] : p->sent())
            sentIds.insert(s.eventIds.begin(), s.eventIds.end());
    }
    const OnceCheck once = compareOnce(eventIdCounts(db, kEventsTable), sentIds);
    CHECK(once.missing == 0);
    CHECK(once.repeated == 0);
    CHECK(once.extra == 0);
    CHECK(integrityCheck(db) == "ok");
}
