// Issue 6 through the real daemon: a fake $NOTIFY_SOCKET (READY, STATUS, STOPPING, RELOADING,
// WATCHDOG), the watchdog stopping while the writer is stalled, SIGHUP reloads under load (a good
// and a bad contract), the metrics endpoint against SQL, and the log's form and contents.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "config/builtin.h"
#include "core/encoding.h"
#include "core/reason.h"
#include "feature_support.h"
#include "harness.h"
#include "ingest/producer.h"
#include "privacy/key_wrap.h"
#include "privacy/tink_keyset.h"
#include "workload/generator.h"

using namespace sluice;
using namespace sluice::testing;
using namespace std::chrono_literals;

namespace {

const char* const kContract110 = R"JSON({"ref": "acme/checkout/1.1.0", "key_field": "session_id",
 "data_subject_field": "customer_id", "retention_days": 30,
 "fields": {
   "session_id":  {"type": "string",  "required": true, "pii": 0},
   "customer_id": {"type": "string",  "pii": 1},
   "email":       {"type": "string",  "pii": 2, "pattern": "^[^@]+@[^@]+$"},
   "ip":          {"type": "string",  "pii": 2},
   "country":     {"type": "string",  "required": true, "pattern": "^[A-Z]{2}$"},
   "device":      {"type": "string"},
   "total":       {"type": "number",  "required": true},
   "items":       {"type": "integer"},
   "coupon":      {"type": "string"}}})JSON";

// An invalid contract: its pattern is not a valid regular expression.
const char* const kContract120Bad = R"JSON({"ref": "acme/checkout/1.2.0", "key_field": "session_id",
 "fields": {
   "session_id":  {"type": "string",  "required": true, "pii": 0},
   "country":     {"type": "string",  "required": true, "pattern": "^([A-Z]{2}$"},
   "total":       {"type": "number",  "required": true}}})JSON";

std::string checkoutLine(const std::string& contract, const std::string& id, const std::string& session,
                         const std::string& customer, const std::string& extra = "")
{
    return R"({"meta":{"contract":")" + contract + R"(","consent":[0,1,2],"event_id":")" + id +
           R"("},"session_id":")" + session + R"(","customer_id":")" + customer +
           R"(","country":"NL","device":"web","total":12.5,"items":2)" + extra + "}";
}

std::unique_ptr<ingest::AckProducer> producerFor(const Daemon& d, int64_t timeoutMs = 60'000)
{
    ingest::AckProducer::Options po;
    po.endpoint = d.routerEndpoint();
    po.timeoutMs = timeoutMs;
    auto p = ingest::AckProducer::connect(po);
    REQUIRE(p);
    return std::move(*p);
}

bool waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (done())
            return true;
        std::this_thread::sleep_for(20ms);
    }
    return done();
}

size_t countAfter(const std::vector<NotifySocket::Message>& ms, std::chrono::steady_clock::time_point t)
{
    return static_cast<size_t>(std::count_if(ms.begin(), ms.end(), [&](const auto& m) { return m.at > t; }));
}

// A daemon whose contracts directory (holding 1.0.0) the test can change before a SIGHUP, and
// whose notifications go to `notify`.
DaemonOptions reloadableDaemon(const std::string& contracts, const NotifySocket& notify)
{
    std::filesystem::create_directories(contracts);
    writeFileAtomically(contracts + "/acme-checkout-1.0.0.json", config::kBuiltinContract);
    DaemonOptions o;
    o.contracts = contracts;
    o.env["NOTIFY_SOCKET"] = notify.path();
    return o;
}

}  // namespace

TEST_CASE("systemd: READY=1 once the ingest socket accepts events, STATUS lines, STOPPING=1 on SIGTERM",
          "[features][systemd]")
{
    TempDir dir("sluice-features");
    NotifySocket notify(dir.file("notify.sock"));
    const std::string routerPath = dir.file("router.sock");
    std::atomic<int> routerAtReady{-1};
    notify.onMessage([&](const NotifySocket::Message& m) {
        if (hasLine(m.text, "READY=1") && routerAtReady.load() < 0)
            routerAtReady = unixStreamConnects(routerPath) ? 1 : 0;
    });
    DaemonOptions o;
    o.router = "ipc://" + routerPath;
    o.env["NOTIFY_SOCKET"] = notify.path();
    o.extraConfig = "[batch]\nmax_delay = 20ms\n";
    Daemon daemon(dir, o);
    REQUIRE(daemon.start());
    REQUIRE(notify.waitFor("READY=1"));
    // At the moment READY=1 arrived, the acknowledged endpoint was already listening...
    CHECK(routerAtReady.load() == 1);
    // ...and a request sent right away is acknowledged.
    auto producer = producerFor(daemon);
    REQUIRE(producer->send(checkoutLine("acme/checkout/1.0.0", "n-1", "s-1", "c-1"), 1));
    REQUIRE(producer->flush());
    CHECK(producer->report().accepted == 1);

    // Readable STATUS lines: the first right after READY, then the periodic summary.
    CHECK(notify.waitFor("STATUS=", 1, 5s, true));
    CHECK(notify.waitFor("STATUS=", 3, 10s, true));
    bool summary = false;
    for (const auto& m : notify.matching("STATUS=", true))
        summary |= m.text.find("events/s") != std::string::npos && m.text.find("1 committed") != std::string::npos;
    CHECK(summary);
    CHECK(notify.matching("WATCHDOG=1").empty());  // no $WATCHDOG_USEC: no pings

    REQUIRE(daemon.stop() == 0);
    REQUIRE(notify.waitFor("STOPPING=1"));
    const auto all = notify.messages();
    const auto ready = notify.matching("READY=1");
    const auto stopping = notify.matching("STOPPING=1");
    CHECK(ready.size() == 1);
    CHECK(stopping.front().at >= ready.front().at);
    for (const auto& m : all)
        INFO("notification: " << m.text);
    CHECK(countAfter(ready, stopping.front().at) == 0);
}

TEST_CASE("systemd: WATCHDOG=1 while healthy, none while the writer is stalled; the log names the stage",
          "[features][systemd]")
{
    TempDir dir("sluice-features");
    NotifySocket notify(dir.file("notify.sock"));
    DaemonOptions o;
    o.router = "ipc://" + dir.file("router.sock");
    o.env["NOTIFY_SOCKET"] = notify.path();
    o.env["WATCHDOG_USEC"] = "2000000";  // WATCHDOG_PID unset: sd_watchdog_enabled() says yes
    o.extraConfig = "[batch]\nmax_delay = 20ms\n[testing]\nstall_writer_file = stall\n";
    Daemon daemon(dir, o);
    const std::string stallFile = daemon.stateDir() + "/stall";
    REQUIRE(daemon.start());
    REQUIRE(notify.waitFor("READY=1"));
    REQUIRE(notify.waitFor("WATCHDOG=1", 3, 10s));

    // Stall the writer with a request pending.
    { std::ofstream(stallFile) << "stall\n"; }
    auto producer = producerFor(daemon);
    REQUIRE(producer->send(checkoutLine("acme/checkout/1.0.0", "w-1", "s-1", "c-1"), 1));
    REQUIRE(waitUntil([&] { return daemon.log().find("writer stalled: busy in commit") != std::string::npos; }, 15s));
    const auto stalledSeen = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(2500ms);  // five watchdog ticks
    CHECK(countAfter(notify.matching("WATCHDOG=1"), stalledSeen + 100ms) == 0);
    REQUIRE(producer->serveUntil(0));
    CHECK(producer->inFlight() == 1);  // not acknowledged: nothing was committed
    CHECK(queryInt(daemon.database(), "SELECT count(*) FROM events_acme_checkout_1_0_0") == 0);
    // STATUS lines keep coming: the main loop itself is alive.
    CHECK(countAfter(notify.matching("STATUS=", true), stalledSeen + 100ms) > 0);
    const std::string log = daemon.log();
    CHECK(log.find("no more watchdog pings") != std::string::npos);

    // Unstalled: the request commits and is acknowledged, and the pings resume.
    std::filesystem::remove(stallFile);
    const auto released = std::chrono::steady_clock::now();
    REQUIRE(producer->flush());
    CHECK(producer->report().accepted == 1);
    CHECK(waitUntil([&] { return countAfter(notify.matching("WATCHDOG=1"), released) >= 2; }, 10s));
    REQUIRE(daemon.stop() == 0);
}

TEST_CASE("systemd: no WATCHDOG=1 when $WATCHDOG_PID names another process", "[features][systemd]")
{
    TempDir dir("sluice-features");
    NotifySocket notify(dir.file("notify.sock"));
    DaemonOptions o;
    o.env["NOTIFY_SOCKET"] = notify.path();
    o.env["WATCHDOG_USEC"] = "1000000";
    o.env["WATCHDOG_PID"] = "1";  // sd_watchdog_enabled(): the watchdog is for PID 1, not us
    Daemon daemon(dir, o);
    REQUIRE(daemon.start());
    REQUIRE(notify.waitFor("READY=1"));
    CHECK(notify.waitFor("STATUS=", 3, 10s, true));  // ticks happen (every second)...
    CHECK(notify.matching("WATCHDOG=1").empty());     // ...but ping nobody
    REQUIRE(daemon.stop() == 0);
}

TEST_CASE("systemd: WATCHDOG=1 when $WATCHDOG_PID is sluiced's own pid, as systemd sets it", "[features][systemd]")
{
    TempDir dir("sluice-features");
    NotifySocket notify(dir.file("notify.sock"));
    // The pid is known only once the process exists: a shell sets WATCHDOG_PID=$$ and execs
    // sluiced, which keeps that pid.
    const char* real = std::getenv("SLUICED");
    REQUIRE(real);
    const std::string realPath = real;
    const std::string wrapper = dir.file("sluiced-with-watchdog-pid.sh");
    {
        std::ofstream w(wrapper);
        w << "#!/bin/sh\nWATCHDOG_PID=$$ exec \"$SLUICED_REAL\" \"$@\"\n";
    }
    std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all);
    DaemonOptions o;
    o.env["NOTIFY_SOCKET"] = notify.path();
    o.env["WATCHDOG_USEC"] = "1000000";
    o.env["SLUICED_REAL"] = realPath;
    Daemon daemon(dir, o);
    ::setenv("SLUICED", wrapper.c_str(), 1);
    const bool started = daemon.start();
    ::setenv("SLUICED", realPath.c_str(), 1);
    REQUIRE(started);
    REQUIRE(notify.waitFor("READY=1"));
    CHECK(notify.waitFor("WATCHDOG=1", 3, 10s));
    REQUIRE(daemon.stop() == 0);
}

TEST_CASE("systemd: SIGHUP reloads a new contract under load without losing an event; a bad one is refused",
          "[features][systemd]")
{
    TempDir dir("sluice-features");
    NotifySocket notify(dir.file("notify.sock"));
    const std::string contracts = dir.file("contracts");
    DaemonOptions o = reloadableDaemon(contracts, notify);
    o.extraConfig = "[batch]\nmax_delay = 20ms\n";
    Daemon daemon(dir, o);
    REQUIRE(daemon.start());
    REQUIRE(notify.waitFor("READY=1"));

    // Continuous acknowledged load of 1.0.0 events from another thread.
    std::atomic<bool> stopLoad{false};
    std::atomic<uint64_t> sentRequests{0};
    std::set<std::string> loadIds;
    ingest::ProducerReport loadReport;
    std::thread load([&] {
        auto p = producerFor(daemon);
        for (uint64_t r = 0; !stopLoad; ++r) {
            std::string body;
            for (int i = 0; i < 20; ++i) {
                const std::string id = "load-" + std::to_string(r) + "-" + std::to_string(i);
                loadIds.insert(id);
                body += checkoutLine("acme/checkout/1.0.0", id, "s-" + std::to_string(i), "c-" + std::to_string(r)) + "\n";
            }
            if (!p->send(body, 20))
                break;
            ++sentRequests;
            std::this_thread::sleep_for(2ms);
        }
        (void)p->flush();
        loadReport = p->report();
    });
    REQUIRE(waitUntil([&] { return sentRequests.load() >= 50; }, 20s));

    // A new contract version, then SIGHUP: RELOADING=1, then READY=1 again.
    writeFileAtomically(contracts + "/acme-checkout-1.1.0.json", kContract110);
    const uint64_t requestsBeforeReload = sentRequests.load();
    REQUIRE(::kill(daemon.pid(), SIGHUP) == 0);
    REQUIRE(notify.waitFor("READY=1", 2));
    const auto reloading = notify.matching("RELOADING=1");
    REQUIRE(reloading.size() == 1);
    CHECK(hasLine(reloading.front().text, "MONOTONIC_USEC=", true));
    CHECK(reloading.front().at <= notify.matching("READY=1")[1].at);
    CHECK(daemon.log().find("reload accepted") != std::string::npos);

    // Events of the new version are accepted from now on.
    {
        auto p = producerFor(daemon);
        std::string body;
        for (int i = 0; i < 10; ++i)
            body += checkoutLine("acme/checkout/1.1.0", "v110-" + std::to_string(i), "s-x", "c-x",
                                 R"(,"coupon":"SPRING")") + "\n";
        REQUIRE(p->send(body, 10));
        REQUIRE(p->flush());
        CHECK(p->report().accepted == 10);
        CHECK(p->report().rejected == 0);
    }
    REQUIRE(waitUntil([&] { return sentRequests.load() >= requestsBeforeReload + 50; }, 20s));
    stopLoad = true;
    load.join();
    CHECK(loadReport.requests == sentRequests.load());
    CHECK(loadReport.acknowledged == loadReport.requests);
    CHECK(loadReport.failed == 0);
    CHECK(loadReport.rejected == 0);
    CHECK(loadReport.accepted == loadIds.size());

    // An invalid contract: refused, with the reason in the log; the running configuration stays.
    writeFileAtomically(contracts + "/acme-checkout-1.2.0.json", kContract120Bad);
    const size_t logBefore = daemon.log().size();
    REQUIRE(::kill(daemon.pid(), SIGHUP) == 0);
    REQUIRE(notify.waitFor("READY=1", 3));
    CHECK(notify.matching("RELOADING=1").size() == 2);
    REQUIRE(waitUntil([&] { return daemon.log().find("reload refused", logBefore) != std::string::npos; }, 10s));
    std::string refusal;
    for (const std::string& line : splitLines(daemon.log().substr(logBefore)))
        if (line.find("reload refused") != std::string::npos)
            refusal = line;
    INFO("refusal: " << refusal);
    CHECK(refusal.rfind("<3>", 0) == 0);
    CHECK(refusal.find("acme-checkout-1.2.0.json") != std::string::npos);
    CHECK(refusal.find("fields.country.pattern") != std::string::npos);
    CHECK(daemon.running());
    {
        auto p = producerFor(daemon);
        REQUIRE(p->send(checkoutLine("acme/checkout/1.1.0", "after-bad-1", "s-y", "c-y", R"(,"coupon":"X")"), 1));
        REQUIRE(p->send(checkoutLine("acme/checkout/1.0.0", "after-bad-2", "s-y", "c-y"), 1));
        REQUIRE(p->send(R"({"meta":{"contract":"acme/checkout/1.2.0","consent":[0]},"session_id":"s","country":"NL","total":1})",
                        1));
        REQUIRE(p->flush());
        CHECK(p->report().accepted == 2);
        CHECK(p->report().byReason[static_cast<size_t>(Reason::kUnknownContract)] == 1);
    }
    REQUIRE(daemon.stop() == 0);

    // Every acknowledged event is there, exactly once.
    const std::string db = daemon.database();
    std::set<std::string> stored;
    for (const SqlRow& r : querySql(db, "SELECT event_id FROM events_acme_checkout_1_0_0 WHERE event_id LIKE 'load-%'"))
        stored.insert(r[0].text);
    CHECK(stored == loadIds);
    CHECK(queryInt(db, "SELECT count(*) FROM events_acme_checkout_1_0_0 WHERE event_id LIKE 'load-%'") ==
          static_cast<int64_t>(loadIds.size()));
    CHECK(queryInt(db, "SELECT count(*) FROM events_acme_checkout_1_1_0 WHERE coupon IS NOT NULL") == 11);
}

TEST_CASE("metrics: the Prometheus endpoint agrees with SQL during and after a run", "[features][metrics]")
{
    TempDir dir("sluice-features");
    DaemonOptions o;
    o.extraConfig = "[batch]\nmax_delay = 20ms\nmax_events = 400\n";
    Daemon daemon(dir, o);
    REQUIRE(daemon.start());
    REQUIRE(!daemon.metricsAddress().empty());
    const std::string db = daemon.database();
    auto scrape = [&] { return parseMetrics(httpGet(daemon.metricsAddress(), "/metrics")); };
    const char* counters[] = {"sluice_events_received_total", "sluice_events_committed_total",
                              "sluice_events_duplicate_total", "sluice_batches_total"};

    // Fire-and-forget: 6000 events, 5% invalid in ten ways.
    workload::Options wo;
    wo.seed = 5;
    wo.invalidFraction = 0.05;
    workload::Generator push(wo);
    auto pushProducer = ingest::PushProducer::connect(daemon.pullEndpoint());
    REQUIRE(pushProducer);
    std::string body;
    std::map<std::string, double> during1, during2;
    for (int i = 0; i < 6000; ++i) {
        push.next(body);
        body += '\n';
        if ((i + 1) % 100 == 0) {
            REQUIRE((*pushProducer)->send(body));
            body.clear();
        }
        if (i == 3000)
            during1 = scrape();
    }
    (*pushProducer)->close(5000);

    // Acknowledged: 3000 events, 2% invalid, event times up to two minutes out of order (some
    // late for the built-in 1m aggregation with 30s lateness), then 10 requests replayed.
    wo.seed = 6;
    wo.invalidFraction = 0.02;
    wo.baseTimeMs = wallMs() - 3'600'000;
    wo.stepMs = 100;
    wo.jitterMs = 120'000;
    workload::Generator acked(wo);
    ingest::AckProducer::Options po;
    po.endpoint = daemon.routerEndpoint();
    po.producerId = "metrics-" + randomHex(8);
    po.timeoutMs = 60'000;
    std::vector<std::string> bodies;
    {
        auto p = ingest::AckProducer::connect(po);
        REQUIRE(p);
        for (int r = 0; r < 60; ++r) {
            std::string b;
            for (int i = 0; i < 50; ++i) {
                acked.next(b);
                b += '\n';
            }
            bodies.push_back(b);
            REQUIRE((*p)->send(b, 50));
        }
        // With requests still in flight, once something has been committed and made durable
        // (SQL readers may see a commit a few milliseconds before the WAL sync that lets the
        // metrics count it).
        REQUIRE(waitUntil([&] { return queryInt(db, "SELECT count(*) FROM batches") > 0; }, 20s));
        REQUIRE(waitUntil(
            [&] {
                during2 = scrape();
                auto batches = metric(during2, "sluice_batches_total");
                return batches && *batches > 0;
            },
            20s));
        REQUIRE((*p)->flush());
        CHECK((*p)->report().acknowledged == 60);
    }
    {
        auto p = ingest::AckProducer::connect(po);  // same producer, same sequence numbers
        REQUIRE(p);
        for (int r = 0; r < 10; ++r)
            REQUIRE((*p)->send(bodies[static_cast<size_t>(r)], 50));
        REQUIRE((*p)->flush());
        CHECK((*p)->report().duplicateRequests == 10);
    }
    REQUIRE(waitUntil([&] { return queryInt(db, "SELECT coalesce(sum(received), 0) FROM batches") >= 6000 + 3000 + 500; },
                      30s));
    CHECK(queryInt(db, "SELECT sum(received) FROM batches") == 9500);

    // During the run: counters only grow, and never run ahead of what SQL shows afterwards.
    const auto after = scrape();
    REQUIRE(!after.empty());
    for (const char* c : counters) {
        INFO(c);
        REQUIRE(metric(during1, c));
        REQUIRE(metric(during2, c));
        CHECK(*metric(during1, c) <= *metric(during2, c));
        CHECK(*metric(during2, c) <= *metric(after, c));
    }
    CHECK(*metric(during2, "sluice_batches_total") > 0);

    // After the run: exactly the SQL counts.
    auto sql = [&](const std::string& q) { return static_cast<double>(queryInt(db, q)); };
    const double batches = sql("SELECT count(*) FROM batches");
    CHECK(metric(after, "sluice_events_received_total") == sql("SELECT sum(received) FROM batches"));
    CHECK(metric(after, "sluice_events_committed_total") == sql("SELECT count(*) FROM events_acme_checkout_1_0_0"));
    CHECK(metric(after, "sluice_events_committed_total") == sql("SELECT sum(committed) FROM batches"));
    CHECK(metric(after, "sluice_events_duplicate_total") == sql("SELECT sum(duplicates) FROM batches"));
    CHECK(metric(after, "sluice_events_duplicate_total") == 500);
    CHECK(metric(after, "sluice_batches_total") == batches);
    CHECK(metric(after, "sluice_events_late_total") == sql("SELECT sum(late) FROM batches"));
    CHECK(metric(after, "sluice_events_late_total") == sql("SELECT sum(events) FROM late_events"));
    CHECK(*metric(after, "sluice_events_late_total") > 0);
    CHECK(metric(after, "sluice_keys_created_total") == sql("SELECT count(*) FROM keys"));
    CHECK(metric(after, "sluice_keys_created_total") == sql("SELECT sum(keys_created) FROM batches"));
    std::map<std::string, double> rejectsByReason;
    for (const SqlRow& r : querySql(db, "SELECT reason, count(*) FROM rejects GROUP BY reason"))
        rejectsByReason[r[0].text] = static_cast<double>(r[1].i);
    CHECK(rejectsByReason.size() == 10);
    double rejected = 0;
    for (size_t i = 0; i < kReasonCount; ++i) {
        const std::string reason(reasonCode(static_cast<Reason>(i)));
        if (reason == "duplicate")
            continue;  // duplicates have their own counter and are not dead letters
        INFO("reason " << reason);
        const auto m = metric(after, "sluice_events_rejected_total{reason=\"" + reason + "\"}");
        REQUIRE(m);
        CHECK(*m == (rejectsByReason.count(reason) ? rejectsByReason[reason] : 0.0));
        rejected += *m;
    }
    CHECK(rejected == sql("SELECT sum(rejected) FROM batches"));
    // Histograms: one observation per batch; batch sizes add up to the events received.
    CHECK(metric(after, "sluice_batch_events_count") == batches);
    CHECK(metric(after, "sluice_batch_events_sum") == sql("SELECT sum(received) FROM batches"));
    CHECK(metric(after, "sluice_batch_events_bucket{le=\"+Inf\"}") == batches);
    CHECK(metric(after, "sluice_commit_seconds_count") == batches);
    CHECK(metric(after, "sluice_commit_seconds_bucket{le=\"+Inf\"}") == batches);
    // The per-batch latency steps: one observation per timed batch, as their means count them.
    for (const char* step : {"tail", "write_commit", "sync"}) {
        INFO("step " << step);
        const std::string label = std::string("{step=\"") + step + "\"}";
        const auto samples = metric(after, "sluice_latency_step_samples_total" + label);
        REQUIRE(samples);
        CHECK(*samples > 0);
        CHECK(metric(after, "sluice_latency_step_seconds_count" + label) == *samples);
        CHECK(metric(after, std::string("sluice_latency_step_seconds_bucket{step=\"") + step + "\",le=\"+Inf\"}") ==
              *samples);
        const auto seconds = metric(after, "sluice_latency_step_seconds_sum" + label);
        const auto us = metric(after, "sluice_latency_step_microseconds_total" + label);
        REQUIRE(seconds);
        REQUIRE(us);
        // The counter sums whole microseconds per scrape, the histogram exact seconds.
        CHECK(*seconds * 1e6 == Approx(*us).margin(*samples + 1));
    }
    CHECK(metric(after, "sluice_build_info{version=\"0.1.0\"}") == 1);
    REQUIRE(daemon.stop() == 0);
}

TEST_CASE("logs: every line has a journald priority prefix; no PII canary and no key bytes appear",
          "[features][logs]")
{
    TempDir dir("sluice-features");
    NotifySocket notify(dir.file("notify.sock"));
    const std::string contracts = dir.file("contracts");
    DaemonOptions o = reloadableDaemon(contracts, notify);
    o.env["WATCHDOG_USEC"] = "2000000";
    o.extraConfig = "[log]\nlevel = debug\n[batch]\nmax_delay = 20ms\n[testing]\nstall_writer_file = stall\n";
    Daemon daemon(dir, o);
    REQUIRE(daemon.start());
    REQUIRE(notify.waitFor("READY=1"));

    // Valid and invalid events full of canaries, over both ingest modes.
    std::vector<std::string> canaries;
    auto canary = [&](const char* kind) {
        canaries.push_back(std::string("cnry-") + kind + "-" + randomHex(16));
        return canaries.back();
    };
    std::string acked, pushed;
    for (int i = 0; i < 200; ++i) {
        const std::string session = canary("sess"), customer = canary("cust"), mail = canary("mail") + "@x.org",
                          ip = canary("ip");
        std::string line = R"({"meta":{"contract":"acme/checkout/1.0.0","consent":[)" +
                           std::string(i % 3 ? "0,1,2" : "0") + R"(],"event_id":"log-)" + std::to_string(i) +
                           R"("},"session_id":")" + session + R"(","customer_id":")" + customer + R"(","email":")" +
                           mail + R"(","ip":")" + ip + R"(","country":"NL","total":3})";
        switch (i % 10) {
        case 7: line = R"({"meta":{"contract":"acme/checkout/1.0.0","consent":[0]},"session_id":")" + canary("bad") +
                       R"(","email":")" + canary("badmail") + R"(","country":"NL","total":1})"; break;
        case 8: line = R"({"meta":{"contract":"acme/checkout/1.0.0","consent":[0]},"session_id":")" + canary("bad") +
                       R"(","unknown":")" + canary("bad") + R"(","country":"NL","total":1})"; break;
        case 9: line = R"({"session_id":")" + canary("bad") + "\""; break;
        default: break;
        }
        (i % 2 ? acked : pushed) += line + "\n";
    }
    {
        auto p = producerFor(daemon);
        REQUIRE(p->send(acked, 100));
        REQUIRE(p->flush());
        CHECK(p->report().accepted > 50);
        auto push = ingest::PushProducer::connect(daemon.pullEndpoint());
        REQUIRE(push);
        REQUIRE((*push)->send(pushed));
        (*push)->close(5000);
    }
    REQUIRE(waitUntil([&] { return queryInt(daemon.database(), "SELECT sum(received) FROM batches") == 200; }, 20s));

    // Things an operator sees in the log: a refused reload, a writer stall.
    writeFileAtomically(contracts + "/acme-checkout-1.2.0.json", kContract120Bad);
    REQUIRE(::kill(daemon.pid(), SIGHUP) == 0);
    REQUIRE(notify.waitFor("READY=1", 2));
    { std::ofstream(daemon.stateDir() + "/stall") << "x"; }
    {
        auto p = producerFor(daemon);
        REQUIRE(p->send(R"({"meta":{"contract":"acme/checkout/1.0.0","consent":[0]},"session_id":")" + canary("stall") +
                            R"(","country":"NL","total":1})",
                        1));
        REQUIRE(waitUntil([&] { return daemon.log().find("writer stalled") != std::string::npos; }, 15s));
        std::filesystem::remove(daemon.stateDir() + "/stall");
        REQUIRE(p->flush());
    }
    REQUIRE(daemon.stop() == 0);
    const std::string log = daemon.log();
    const auto lines = splitLines(log);
    REQUIRE(lines.size() > 5);
    for (const std::string& line : lines) {
        INFO("log line: " << line);
        CHECK((line.size() >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>'));
    }
    CHECK(log.find("reload refused") != std::string::npos);
    CHECK(log.find("writer stalled") != std::string::npos);

    const auto leaked = findAll(log, canaries);
    CHECK(leaked.empty());
    for (size_t i = 0; i < leaked.size() && i < 5; ++i)
        UNSCOPED_INFO("canary in the log: " << leaked[i]);

    // Key bytes in every usual text form: the master key, and each data key (whole and both
    // halves, its Tink serialized form, its wrapped form).
    std::vector<std::string> secrets;
    auto forms = [&](std::string_view bytes) {
        secrets.push_back(toHex(bytes));
        secrets.push_back(upperHex(bytes));
        secrets.push_back(toBase64(bytes));
    };
    auto master = privacy::readSecretFile(daemon.stateDir() + "/master.key", privacy::kMasterKeySize);
    REQUIRE(master);
    forms(master->view());
    const auto keys = loadKeys(daemon.database(), daemon.stateDir() + "/master.key");
    REQUIRE(keys.size() > 100);
    for (const auto& [link, k] : keys) {
        forms(k.key.view());
        forms(k.key.view().substr(0, 32));
        forms(k.key.view().substr(32));
        auto proto = privacy::serializeAesSivKey(k.key.view());
        REQUIRE(proto);
        forms(proto->view());
        forms(k.wrapped);
    }
    const auto keyLeaks = findAll(log, secrets);
    CHECK(keyLeaks.empty());
}
