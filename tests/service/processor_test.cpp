// The Processor thread at its seams: batches (whole or in parts) into its input queue, WriteBatch
// parts out of its output queue, written by a real BatchWriter into a real SQLite file, with the
// built-in reference pipeline on a WorkerPool of two lanes.
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/queue.h"
#include "privacy/key_wrap.h"
#include "privacy/random.h"
#include "service/processor.h"
#include "store/batch_writer.h"
#include "support/reference_store.h"
#include "transform/pipeline_runtime.h"
#include "transform/transformer.h"

namespace sluice::service {
namespace {

using namespace std::chrono_literals;
using sluice::testing::ReferenceStore;

constexpr int64_t kNow = 1'764'000'000'000;

std::string events(int first, int count)
{
    std::string body;
    for (int i = first; i < first + count; ++i)
        body += R"({"meta":{"contract":"acme/checkout/1.0.0","consent":[0,1,2],"event_time":)" +
                std::to_string(kNow - 1000) + R"(},"session_id":"s-)" + std::to_string(i % 7) +
                R"(","customer_id":"c-1","email":"a@example.com","ip":"10.0.0.1","country":"NL","device":"ios",)"
                R"("total":1.5,"items":)" + std::to_string(i + 1) + "}\n";
    return body;
}

Request request(const std::string& body, uint64_t seq)
{
    Request r;
    r.payload = Payload(body);
    r.events = countEvents(body);
    r.wireBytes = body.size();
    r.receivedAtMs = kNow;
    r.mode = RequestMode::kAcknowledged;
    r.producer = "p";
    r.seq = seq;
    return r;
}

// Requests are move-only: a list of them cannot come from an initializer list.
template <typename... R>
std::vector<Request> requests(R&&... r)
{
    std::vector<Request> v;
    (v.push_back(std::forward<R>(r)), ...);
    return v;
}

Batch part(uint64_t id, bool first, bool final, std::vector<Request> requests)
{
    Batch b;
    b.id = id;
    b.first = first;
    b.final = final;
    for (Request& r : requests) {
        b.events += r.events;
        b.bytes += r.payload.size();
        b.requests.push_back(std::move(r));
    }
    b.openedAtMs = kNow;
    if (final)
        b.closedAtMs = kNow;
    return b;
}

// A database with the reference pipeline's tables, a Processor over it, and the queues around it.
struct Rig : ReferenceStore {
    Rig() : ReferenceStore(kNow), clock(kNow), in(1), out(1)
    {
        Processor::Options po;
        po.workers = 2;
        po.databasePath = path;
        processor = std::make_unique<Processor>(po, clock, *wrapper, in, out, stats);
        processor->setFatal([this](const Status& s) { fatal = s; });
        REQUIRE(processor->start(runtime, {}).isOk());
    }

    ~Rig()
    {
        in.close();
        out.close();
        processor->join();
    }

    // The next WriteBatch, or nullopt after 10 s.
    std::optional<WriteBatch> next() { return out.popFor(10s); }

    // Writes the parts of one batch as the writer stage does; returns how many parts it took.
    int commitBatch()
    {
        int parts = 0;
        std::vector<std::string> shredded;
        while (true) {
            std::optional<WriteBatch> wb = next();
            REQUIRE(wb);
            CHECK(wb->opensBatch == (parts == 0));
            ++parts;
            if (wb->opensBatch)
                REQUIRE(writer->beginBatch(*wb, shredded).isOk());
            if (!wb->closesBatch) {
                REQUIRE(writer->writePart(*wb).isOk());
                keys.insert(keys.end(), wb->keys.begin(), wb->keys.end());
                continue;
            }
            store::CommitTiming timing;
            REQUIRE(writer->commitBatch(*wb, timing).isOk());
            keys.insert(keys.end(), wb->keys.begin(), wb->keys.end());
            last = std::move(*wb);
            processor->committed(keys, {});
            keys.clear();
            return parts;
        }
    }

    ManualClock clock;
    BoundedQueue<Batch> in;
    BoundedQueue<WriteBatch> out;
    ProcessorStats stats;
    std::unique_ptr<Processor> processor;
    std::optional<Status> fatal;
    std::vector<KeyRecord> keys;
    WriteBatch last;
};

}  // namespace

TEST_CASE("processor: a whole batch comes out as one part that opens and closes it", "[service][processor]")
{
    Rig rig;
    REQUIRE(rig.in.push(part(1, true, true, requests(request(events(0, 5), 1), request(events(5, 3), 2)))));
    CHECK(rig.commitBatch() == 1);
    CHECK(rig.last.record.id == 1);
    CHECK(rig.last.record.received == 8);
    CHECK(rig.last.record.committed == 8);
    REQUIRE(rig.last.outcomes.size() == 2);
    CHECK(rig.last.outcomes[0].seq == 1);
    CHECK(rig.last.outcomes[1].seq == 2);
    CHECK(rig.count("SELECT count(*) FROM events_acme_checkout_1_0_0") == 8);
    CHECK(rig.stats.batches.load() == 1);
    CHECK(rig.stats.received.load() == 8);
    CHECK_FALSE(rig.fatal);
}

TEST_CASE("processor: a batch in parts is one batch: its rows in arrival order, its record and replies on the last part",
          "[service][processor]")
{
    Rig rig;
    // Three parts of batch 1. The processor hands rows on whenever the writer has taken
    // everything, so the batch may come out in one to three parts; together they are the batch.
    REQUIRE(rig.in.push(part(1, true, false, requests(request(events(0, 4), 1)))));
    REQUIRE(rig.in.push(part(1, false, false, requests(request(events(4, 4), 2), request(events(8, 2), 3)))));
    REQUIRE(rig.in.push(part(1, false, true, requests(request(events(10, 5), 4)))));
    const int parts = rig.commitBatch();
    CHECK(parts >= 1);
    CHECK(parts <= 3);
    CHECK(rig.last.record.id == 1);
    CHECK(rig.last.record.received == 15);
    CHECK(rig.last.record.committed == 15);
    CHECK(rig.last.record.requests == 4);
    REQUIRE(rig.last.outcomes.size() == 4);
    for (uint64_t i = 0; i < 4; ++i)
        CHECK(rig.last.outcomes[i].seq == i + 1);
    CHECK(rig.count("SELECT count(*) FROM events_acme_checkout_1_0_0 WHERE batch_id = 1") == 15);
    CHECK(rig.count("SELECT count(*) FROM batches WHERE id = 1 AND received = 15 AND committed = 15") == 1);
    // Seven sessions, seven keys, whichever part created them.
    CHECK(rig.count("SELECT count(*) FROM keys WHERE kind = 'data'") == 7);
    // Rows in arrival order: each event's items field is its position among all events sent.
    CHECK(rig.count("SELECT count(*) FROM (SELECT items, lag(items) OVER (ORDER BY seq) AS prev "
                    "FROM events_acme_checkout_1_0_0 WHERE batch_id = 1) WHERE items <> coalesce(prev, 0) + 1") == 0);

    // The next batch starts afresh and reuses the stored keys.
    REQUIRE(rig.in.push(part(2, true, true, requests(request(events(15, 7), 5)))));
    rig.commitBatch();
    CHECK(rig.last.record.id == 2);
    CHECK(rig.last.keys.empty());
    CHECK(rig.count("SELECT count(*) FROM keys WHERE kind = 'data'") == 7);
    CHECK(rig.stats.batches.load() == 2);
    CHECK(rig.stats.received.load() == 22);
    CHECK_FALSE(rig.fatal);
}

TEST_CASE("processor: closing its input ends the thread and closes its output", "[service][processor]")
{
    Rig rig;
    REQUIRE(rig.in.push(part(1, true, true, requests(request(events(0, 2), 1)))));
    rig.commitBatch();
    rig.in.close();
    rig.processor->join();
    CHECK(rig.out.closed());
    CHECK_FALSE(rig.next());
    CHECK_FALSE(rig.fatal);
}

}  // namespace sluice::service
