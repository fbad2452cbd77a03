// Issue 4's fault test: a commit that fails (every database write fails like a full disk while
// the [testing] fail_writes_file exists) is never acknowledged; sluiced exits 74 at once; after
// the fault is cleared and the daemon restarted, the producer's retries land exactly once.
//
// To know which batch fails, the writer is first held with [testing] stall_writer_file until
// the daemon has processed every event of the requests under test; then the fault is switched
// on and the writer let go, so the very next commit is the one that holds those requests.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"
#include "support.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

void touch(const std::string& path) { std::ofstream(path) << "x\n"; }

// A counter from the daemon's /metrics (-1 when absent).
double metric(const std::string& address, const std::string& name)
{
    std::istringstream body(httpGet(address, "/metrics"));
    std::string line;
    while (std::getline(body, line))
        if (line.rfind(name + " ", 0) == 0)
            return std::stod(line.substr(name.size() + 1));
    return -1;
}

}  // namespace

TEST_CASE("a failed commit is not acknowledged, the daemon exits 74, and retries land once after restart",
          "[integration][durability]")
{
    TempDir dir("sluice-fault");
    const std::string failTrigger = dir.file("fail-writes");
    const std::string stallTrigger = dir.file("stall-writer");
    DaemonOptions options;
    options.pull = "";
    options.router = "ipc://" + dir.file("router.sock");
    options.extraConfig = "[batch]\nmax_delay = 50ms\n[testing]\nfail_writes_file = " + failTrigger +
                          "\nstall_writer_file = " + stallTrigger + "\n";
    Daemon daemon(dir, options);
    REQUIRE(daemon.start());

    // The failing batch is large (4,000 events): its inserts take long enough that a daemon
    // which acknowledged before committing would get the replies out before the commit failed.
    constexpr size_t kPerRequest = 1000;
    constexpr size_t kBefore = 3;   // requests committed before the fault
    constexpr size_t kDuring = 4;   // requests in flight when the commit fails
    const std::vector<std::string> lines = referenceEvents(7, (kBefore + kDuring) * kPerRequest);

    TrackedProducer::Options po;
    po.endpoint = daemon.routerEndpoint();
    po.producerId = "fault-producer";
    po.window = 16;
    po.timeoutMs = 300;
    po.maxBackoffMs = 1000;
    TrackedProducer producer(po);

    // Before the fault: acknowledged as usual.
    for (size_t r = 0; r < kBefore; ++r)
        REQUIRE(producer.send(lines, r * kPerRequest, (r + 1) * kPerRequest));
    REQUIRE(producer.flush());
    REQUIRE(producer.settledRequests() == kBefore);
    const uint64_t firstFaultSeq = kBefore + 1;

    // Hold the writer, send the requests under test, wait until the daemon has processed all of
    // them (they sit before the writer), then make writes fail and let the writer go.
    touch(stallTrigger);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    JoinOnExit joiner(threads, stop);
    threads.emplace_back([&] {
        for (size_t r = kBefore; r < kBefore + kDuring; ++r)
            if (!producer.send(lines, r * kPerRequest, (r + 1) * kPerRequest))
                return;
        producer.flush();  // returns once the restarted daemon has answered everything
    });

    // Wait until the daemon has read every request under test. They sit in its pipeline before
    // the stalled writer; how many of them are transformed yet depends on where its bounded
    // queues are full (a batch handed on in parts holds a queue slot with its first part), so
    // the ingest count is the one to wait for. The originals arrive before any retry (one
    // socket, in order), so once the count reaches them all, all were read.
    auto messagesRead = [&] { return metric(daemon.metricsAddress(), "sluice_ingest_messages_total"); };
    const double requests = static_cast<double>(kBefore + kDuring);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (messagesRead() < requests && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(messagesRead() >= requests);
    // Processed events that are not retries (those count as duplicates): never more than sent.
    CHECK(metric(daemon.metricsAddress(), "sluice_events_received_total") -
              metric(daemon.metricsAddress(), "sluice_events_duplicate_total") <=
          static_cast<double>(lines.size()));
    CHECK(producer.settledRequests() == kBefore);  // nothing acknowledged while stalled

    touch(failTrigger);
    std::remove(stallTrigger.c_str());
    const int code = daemon.stop(0, std::chrono::seconds(30));  // signal 0: just wait for the exit
    INFO(daemon.log());
    REQUIRE(code == 74);
    CHECK(daemon.log().find("failed, exiting without acknowledging it") != std::string::npos);

    // Replies already sent would be in the producer's socket by now; give its thread time to
    // read them (it polls at least every timeout), then check that none came.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    CHECK(producer.settledRequests() == kBefore);
    for (const auto& [seq, s] : producer.settled())
        CHECK(seq < firstFaultSeq);

    // The failed batch left nothing behind; what was acknowledged before is intact.
    const std::string db = daemon.database();
    CHECK(integrityCheckOfCopy(db, dir.file("scratch")) == "ok");
    {
        const auto counts = eventIdCounts(db, kEventsTable);
        CHECK(counts.size() == kBefore * kPerRequest);
        size_t wrong = 0;
        for (size_t i = 0; i < lines.size(); ++i)
            wrong += counts.count(eventIdOf(lines[i])) == (i < kBefore * kPerRequest ? 1u : 0u) ? 0 : 1;
        CHECK(wrong == 0);
        CHECK(queryInt(db, "SELECT count(*) FROM producer_marks") == static_cast<int64_t>(kBefore));
    }

    // Clear the fault and restart: the producer's retries land, once.
    std::remove(failTrigger.c_str());
    REQUIRE(daemon.start());
    threads.front().join();
    for (const std::string& problem : producer.problems())
        FAIL_CHECK(problem);
    const ingest::ProducerReport report = producer.report();
    CHECK(report.unanswered == 0);
    CHECK(report.failed == 0);
    CHECK(report.retries > 0);
    const auto settled = producer.settled();
    REQUIRE(settled.size() == kBefore + kDuring);
    for (const auto& [seq, s] : settled) {
        INFO("seq " << seq);
        CHECK(s.reply.ok);
        CHECK(s.reply.accepted == kPerRequest);
        if (seq >= firstFaultSeq)
            CHECK_FALSE(s.reply.duplicate);  // never committed before the restart
    }

    REQUIRE(daemon.stop(SIGTERM) == 0);
    CHECK(integrityCheck(db) == "ok");
    const auto counts = eventIdCounts(db, kEventsTable);
    CHECK(counts.size() == lines.size());
    size_t notOnce = 0;
    for (const std::string& line : lines) {
        auto it = counts.find(eventIdOf(line));
        notOnce += it != counts.end() && it->second == 1 ? 0 : 1;
    }
    CHECK(notOnce == 0);
    CHECK(queryInt(db, "SELECT count(*) FROM producer_marks") == static_cast<int64_t>(kBefore + kDuring));
    CHECK(queryInt(db, "SELECT count(*) FROM batches WHERE received != committed + duplicates + rejected") == 0);
}

// A storage fault while starting (disk full when the schema and pipeline are recorded): the
// daemon must refuse with EX_IOERR (74), not report a configuration error, and must start once
// the fault is cleared. (Exit codes tell operators where to look; 78 says "fix your config".)
TEST_CASE("a storage fault at startup exits 74 and the daemon starts once it is cleared", "[integration][durability]")
{
    TempDir dir("sluice-fault-start");
    const std::string failTrigger = dir.file("fail-writes");
    auto options = DaemonOptions::acknowledgedOnly(dir, "[testing]\nfail_writes_file = " + failTrigger + "\n");
    Daemon daemon(dir, options);
    REQUIRE(daemon.start());  // creates the database
    REQUIRE(daemon.stop(SIGTERM) == 0);

    touch(failTrigger);
    const int code = daemon.runToExit(std::chrono::seconds(30));
    INFO(daemon.log());
    CHECK(code == 74);
    std::remove(failTrigger.c_str());
    REQUIRE(daemon.start());
    REQUIRE(daemon.stop(SIGTERM) == 0);
    CHECK(integrityCheck(daemon.database()) == "ok");
}
