// Helpers shared by the durability tests: a thread-safe record of what an acknowledged producer
// sent and what the daemon answered, reference events with known ids, and SQL checks on the
// daemon's database (integrity, exactly-once by event_id, table fingerprints).
//
// Nothing here uses Catch2: producer threads record problems as text, and the test thread
// checks them, because Catch2 v2 assertions are not thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ingest/producer.h"

namespace sluice::testing {

inline constexpr const char* kEventsTable = "events_acme_checkout_1_0_0";

// The value of meta.event_id in an event line ("" when there is none).
std::string eventIdOf(std::string_view line);

// `count` valid reference events (workload::Generator, seed `seed`); their event ids are
// "e-<seed>-<n>", so different seeds never collide.
std::vector<std::string> referenceEvents(uint64_t seed, size_t count);

// Lines joined with '\n' (an NDJSON body).
std::string ndjson(const std::vector<std::string>& lines, size_t from, size_t to);

// An AckProducer plus a record of every request it sent (event ids by sequence number) and of
// every reply it settled, readable from other threads while the producer runs. The producer
// itself (send/flush) belongs to one thread.
class TrackedProducer {
public:
    struct Options {
        std::string endpoint;
        std::string producerId;
        uint64_t firstSeq = 1;
        size_t window = 8;
        int64_t timeoutMs = 300;
        int64_t maxBackoffMs = 1000;
        // A generous bound (the daemon is down for a second or two at most in these tests), so
        // that a producer thread ends soon when the daemon never comes back.
        int64_t giveUpMs = 30'000;
    };

    struct Sent {
        std::vector<std::string> eventIds;
        uint32_t events = 0;
        std::string body;
        std::chrono::steady_clock::time_point firstSent;
    };
    struct Settled {
        ingest::Reply reply;
        std::chrono::steady_clock::time_point at;
    };

    explicit TrackedProducer(Options options);
    ~TrackedProducer();

    // Producer thread. Sends one request made of `lines` (the lines are events); false (with a
    // problem recorded) when the producer fails.
    bool send(const std::vector<std::string>& lines, size_t from, size_t to);
    // Producer thread. A request with a body as is: `events` lines, `eventIds` for tracking.
    bool sendBody(std::string body, uint32_t events, std::vector<std::string> eventIds);
    bool flush();

    // Any thread.
    const std::string& producerId() const { return options_.producerId; }
    uint64_t sentRequests() const { return sentRequests_.load(); }
    uint64_t settledRequests() const { return settledRequests_.load(); }
    uint64_t ackedEvents() const { return ackedEvents_.load(); }
    uint64_t outstanding() const { return sentRequests_.load() - settledRequests_.load(); }
    std::map<uint64_t, Sent> sent() const;
    std::map<uint64_t, Settled> settled() const;
    std::vector<std::string> problems() const;
    // Event ids of the requests answered "ok" so far.
    std::set<std::string> ackedEventIds() const;
    ingest::ProducerReport report() const;

private:
    void onReply(const ingest::Reply& reply);
    void problem(std::string text);

    Options options_;
    std::unique_ptr<ingest::AckProducer> producer_;
    mutable std::mutex mutex_;
    std::map<uint64_t, Sent> sent_;
    std::map<uint64_t, Settled> settled_;
    std::vector<std::string> problems_;
    ingest::ProducerReport report_;
    uint64_t nextSeq_;
    std::atomic<uint64_t> sentRequests_{0};
    std::atomic<uint64_t> settledRequests_{0};
    std::atomic<uint64_t> ackedEvents_{0};
};

// `count` producers with the same options, named "<name>-0", "<name>-1", ...
std::vector<std::unique_ptr<TrackedProducer>> makeProducers(size_t count, TrackedProducer::Options options,
                                                            const std::string& name);

// Sets `stop` and joins the threads on every way out of a test, so that a failed REQUIRE does
// not leave joinable threads behind (declare it after the threads and what they use).
class JoinOnExit {
public:
    JoinOnExit(std::vector<std::thread>& threads, std::atomic<bool>& stop) : threads_(threads), stop_(stop) {}
    ~JoinOnExit();
    JoinOnExit(const JoinOnExit&) = delete;
    JoinOnExit& operator=(const JoinOnExit&) = delete;

private:
    std::vector<std::thread>& threads_;
    std::atomic<bool>& stop_;
};

// How a table's event ids (eventIdCounts) compare with the ids that must be there once each.
struct OnceCheck {
    size_t missing = 0;   // expected, not stored
    size_t repeated = 0;  // stored more than once
    size_t extra = 0;     // stored, not expected
};
OnceCheck compareOnce(const std::map<std::string, int64_t>& stored, const std::set<std::string>& expected);

// PRAGMA integrity_check on `database` through a read-write connection (so SQLite recovers a
// WAL left by a crash first). The rows joined with "; " -- "ok" when sound.
std::string integrityCheck(const std::string& database);

// The same check on a copy of the database file and its WAL taken into `scratchDir`, so that the
// original files stay exactly as the crash left them for the daemon's own recovery.
std::string integrityCheckOfCopy(const std::string& database, const std::string& scratchDir);

// event_id -> number of rows in `table` (read-only connection).
std::map<std::string, int64_t> eventIdCounts(const std::string& database, const std::string& table);

// Every table's full content (all rows, ordered), one string per table; `except` are skipped.
std::map<std::string, std::string> tableContents(const std::string& database, const std::set<std::string>& except);

// The resident set size of a process in KiB (VmRSS from /proc/<pid>/status); -1 when unknown.
int64_t residentKiB(pid_t pid);

}  // namespace sluice::testing
