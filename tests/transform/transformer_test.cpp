// The Transformer without the daemon: the built-in reference pipeline, a real SQLite key store
// committed with the store's BatchWriter, real AES-SIV. Lanes run inline or on a WorkerPool.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <tuple>
#include <memory>
#include <string>
#include <vector>

#include "aggregate/hyper_log_log.h"
#include "config/config.h"
#include "core/clock.h"
#include "privacy/key_wrap.h"
#include "privacy/random.h"
#include "privacy/siv.h"
#include "privacy/tink_ciphertext.h"
#include "store/batch_writer.h"
#include "store/db.h"
#include "store/key_table.h"
#include "support/reference_store.h"
#include "transform/pipeline_runtime.h"
#include "transform/transformer.h"
#include "transform/worker_pool.h"

namespace sluice::transform {
namespace {

using sluice::testing::randomMasterKey;
using sluice::testing::ReferenceStore;
using sluice::testing::TempDir;

constexpr int64_t kNow = 1'764'000'000'000;  // 2025-11-24T16:00:00Z

std::string event(const std::string& session, const std::string& customer, const std::string& email,
                  const std::string& consent, int64_t eventTime = kNow - 1000, const std::string& country = "NL")
{
    return R"({"meta":{"contract":"acme/checkout/1.0.0","consent":)" + consent + R"(,"event_time":)" +
           std::to_string(eventTime) + R"(},"session_id":")" + session + R"(","customer_id":")" + customer +
           R"(","email":")" + email + R"(","ip":"10.0.0.1","country":")" + country +
           R"(","device":"ios","total":12.5,"items":2})";
}

Request request(const std::string& body, uint64_t seq, bool acknowledged = true)
{
    Request r;
    r.payload = Payload(body);
    r.events = countEvents(body);
    r.wireBytes = body.size();
    r.receivedAtMs = kNow;
    if (acknowledged) {
        r.mode = RequestMode::kAcknowledged;
        r.producer = "p";
        r.seq = seq;
    }
    return r;
}

Batch batchOf(uint64_t id, std::vector<Request> requests);

Batch batchOf(uint64_t id, Request one)
{
    std::vector<Request> requests;
    requests.push_back(std::move(one));
    return batchOf(id, std::move(requests));
}

Batch batchOf(uint64_t id, std::vector<Request> requests)
{
    Batch b;
    b.id = id;
    for (auto& r : requests) {
        b.events += r.events;
        b.bytes += r.payload.size();
        b.requests.push_back(std::move(r));
    }
    b.openedAtMs = b.closedAtMs = kNow;
    return b;
}

// A key store (a sluice database with the reference pipeline's tables), a master key and a
// Transformer over them.
struct Fixture : ReferenceStore {
    explicit Fixture(Executor& executor, const KeyPolicy& policy, std::shared_ptr<privacy::SecretBytes> master = nullptr,
                     const std::string& database = "", TransformOptions options = {})
        : ReferenceStore(kNow, std::move(master), database), clock(kNow)
    {
        Transformer::Parts parts{executor, *wrapper, policy, databaseKeySources(path), clock};
        auto t = Transformer::create(options, std::move(parts), runtime, {});
        REQUIRE(t.isOk());
        transformer = std::move(*t);
    }

    // Transforms and commits; tells the transformer what the store kept.
    WriteBatch commit(Batch&& b)
    {
        auto wb = transformer->transform(std::move(b));
        REQUIRE(wb.isOk());
        std::vector<std::string> shredded;
        store::CommitTiming timing;
        REQUIRE(writer->commit(*wb, shredded, timing).isOk());
        transformer->keysStored(wb->keys);
        return std::move(*wb);
    }

    // The plaintext of a stored Tink ciphertext, with the key the store holds for `keyLink`.
    std::string decrypt(const std::string& keyLink, const std::string& ciphertext)
    {
        auto keys = store::findKeys(writer->db(), store::KeyFilter{keyLink, {}, 0, 0, "data"});
        REQUIRE(keys.isOk());
        REQUIRE(keys->size() == 1);
        auto bytes = wrapper->unwrap((*keys)[0].wrapped, keyLink);
        REQUIRE(bytes.isOk());
        auto cipher = privacy::SivCipher::create();
        REQUIRE(cipher.isOk());
        auto key = cipher->makeKey(bytes->view());
        REQUIRE(key.isOk());
        REQUIRE(cipher->setKey(*key).isOk());
        auto plain = privacy::tinkDecryptBase64(*cipher, (*keys)[0].keyId, ciphertext);
        REQUIRE(plain.isOk());
        return *plain;
    }

    // (key_link, email, session_id) of every stored event, in rowid order.
    std::vector<std::array<std::string, 3>> storedEvents()
    {
        std::vector<std::array<std::string, 3>> rows;
        auto stmt = writer->db().prepare("SELECT key_link, email, session_id FROM events_acme_checkout_1_0_0 ORDER BY rowid");
        REQUIRE(stmt.isOk());
        for (auto more = stmt->step(); more.isOk() && *more; more = stmt->step())
            rows.push_back({std::string(stmt->columnText(0)), std::string(stmt->columnText(1)),
                            std::string(stmt->columnText(2))});
        return rows;
    }

    ManualClock clock;
    std::unique_ptr<Transformer> transformer;
};

}  // namespace

TEST_CASE("every PII field is stored as a Tink ciphertext that the stored key decrypts")
{
    InlineExecutor inline_;
    RollingKeys policy(86'400'000);
    Fixture f(inline_, policy);
    const WriteBatch wb = f.commit(batchOf(1, request(event("s-1", "c-1", "ann@example.com", "[0,1,2]") + "\n" +
                                                       event("s-2", "c-2", "bob@example.com", "[0]"),
                                                   1)));
    CHECK(wb.record.received == 2);
    CHECK(wb.record.committed == 2);
    CHECK(wb.keys.size() == 2);
    const auto rows = f.storedEvents();
    REQUIRE(rows.size() == 2);
    CHECK(f.decrypt(rows[0][0], rows[0][1]) == "ann@example.com");
    CHECK(f.decrypt(rows[0][0], rows[0][2]) == "s-1");
    CHECK(f.decrypt(rows[1][0], rows[1][1]) == "bob@example.com");
    CHECK(rows[0][1].find('@') == std::string::npos);
    // Only the first event consented to the analytics output's purposes [1, 2].
    CHECK(f.count("SELECT count(*) FROM derived_analytics") == 1);
    CHECK(f.count("SELECT count(*) FROM derived_analytics WHERE customer_id = 'c-1'") == 1);
}

TEST_CASE("a session's second batch reuses its stored key; a new session gets a new one")
{
    InlineExecutor inline_;
    RollingKeys policy(86'400'000);
    Fixture f(inline_, policy);
    const WriteBatch first = f.commit(batchOf(1, request(event("s-1", "c-1", "a@x.y", "[0]"), 1)));
    const WriteBatch second = f.commit(
        batchOf(2, request(event("s-1", "c-1", "a@x.y", "[0]") + "\n" + event("s-9", "c-1", "a@x.y", "[0]"), 2)));
    CHECK(first.keys.size() == 1);
    CHECK(second.keys.size() == 1);  // only s-9's
    const auto rows = f.storedEvents();
    REQUIRE(rows.size() == 3);
    CHECK(rows[0][0] == rows[1][0]);
    CHECK(rows[0][1] == rows[1][1]);  // deterministic: equal plaintexts, equal ciphertexts
    CHECK(rows[2][0] != rows[0][0]);
}

TEST_CASE("a refused event becomes a dead letter and an error of its request; the rest is committed")
{
    InlineExecutor inline_;
    RollingKeys policy(86'400'000);
    Fixture f(inline_, policy);
    const std::string body = event("s-1", "c-1", "a@x.y", "[0]") + "\n" + event("s-2", "c-2", "b@x.y", "[0]", kNow, "Netherlands") +
                             "\n  \n" + "{not json\n" + event("s-3", "c-3", "c@x.y", "[0]");
    const WriteBatch wb = f.commit(batchOf(1, request(body, 7)));
    CHECK(wb.record.received == 4);
    CHECK(wb.record.committed == 2);
    CHECK(wb.record.rejected == 2);
    REQUIRE(wb.outcomes.size() == 1);
    const RequestOutcome& o = wb.outcomes[0];
    CHECK(o.accepted == 2);
    CHECK(o.rejected == 2);
    REQUIRE(o.errors.size() == 2);
    CHECK(o.errors[0].index == 1);
    CHECK(o.errors[0].reason == Reason::kPatternMismatch);
    CHECK(o.errors[1].index == 2);  // the blank line does not count
    CHECK(o.errors[1].reason == Reason::kNotJson);
    REQUIRE(wb.marks.size() == 1);
    CHECK(wb.marks[0].seq == 7);
    CHECK(wb.rejectedByReason[static_cast<size_t>(Reason::kPatternMismatch)] == 1);
    CHECK(f.count("SELECT count(*) FROM dead_letters WHERE producer = 'p' AND seq = 7") == 2);
    CHECK(f.count("SELECT count(*) FROM rejects WHERE input IS NULL") == 0);  // the input copy is kept, encrypted
}

TEST_CASE("two lanes give the rows one lane gives, in arrival order")
{
    std::vector<std::string> bodies;
    {
        // Requests of mixed sizes, a few invalid events among them.
        std::string body;
        for (int i = 0; i < 600; ++i) {
            std::string email = "u";  // built in steps: g++ 12 warns falsely (-Wrestrict) on "u" + to_string() + "@x.y"
            email += std::to_string(i);
            email += "@x.y";
            body += event("s-" + std::to_string(i % 37), "c-" + std::to_string(i % 11), email, i % 3 ? "[0,1,2]" : "[0]");
            if (i % 97 == 5)
                body += "\n{\"meta\":{}}";
            body += "\n";
            if (i % (5 + i % 7) == 0) {
                bodies.push_back(body);
                body.clear();
            }
        }
        bodies.push_back(body);
    }
    auto run = [&](Executor& executor) {
        RollingKeys policy(86'400'000);
        Fixture f(executor, policy);
        std::vector<Request> requests;
        for (size_t i = 0; i < bodies.size(); ++i)
            requests.push_back(request(bodies[i], i));
        const WriteBatch wb = f.commit(batchOf(1, std::move(requests)));
        std::vector<std::string> plain;
        for (const auto& row : f.storedEvents())
            plain.push_back(f.decrypt(row[0], row[2]) + "|" + f.decrypt(row[0], row[1]));
        std::vector<std::string> errors;
        for (const auto& o : wb.outcomes)
            for (const auto& e : o.errors)
                errors.push_back(std::to_string(o.seq) + ":" + std::to_string(e.index));
        return std::tuple(plain, errors, f.count("SELECT count(*) FROM derived_analytics"),
                          f.count("SELECT sum(count) FROM agg_revenue_by_country"));
    };
    InlineExecutor one;
    WorkerPool two(2);
    const auto a = run(one);
    const auto b = run(two);
    CHECK(std::get<0>(a).size() == 600);
    CHECK(std::get<0>(a) == std::get<0>(b));
    CHECK(std::get<1>(a).size() == 7);
    CHECK(std::get<1>(a) == std::get<1>(b));
    CHECK(std::get<2>(a) == std::get<2>(b));
    CHECK(std::get<3>(a) == 600);
    CHECK(std::get<3>(a) == std::get<3>(b));
}

TEST_CASE("daily keys: one per value and UTC day, and the same key store encrypts a re-run identically")
{
    const std::string day1 = event("s-1", "c-1", "a@x.y", "[0]", 1'763'942'400'000 - 1);  // 2025-11-23T23:59:59.999Z
    const std::string day2 = event("s-1", "c-1", "a@x.y", "[0]", 1'763'942'400'000);      // 2025-11-24T00:00:00Z
    InlineExecutor inline_;
    DailyKeys policy;
    auto master = randomMasterKey();
    std::vector<std::array<std::string, 3>> first;
    std::string database;
    TempDir shared;
    database = shared.file("keys.db");
    {
        Fixture f(inline_, policy, master, database);
        const WriteBatch wb = f.commit(batchOf(1, request(day1 + "\n" + day2 + "\n" + day1, 1, false)));
        CHECK(wb.keys.size() == 2);
        first = f.storedEvents();
        REQUIRE(first.size() == 3);
        CHECK(first[0][0] != first[1][0]);
        CHECK(first[0][0] == first[2][0]);
    }
    {
        Fixture again(inline_, policy, master, database);  // a new run over the same key store
        const WriteBatch wb = again.commit(batchOf(2, request(day1 + "\n" + day2 + "\n" + day1, 1, false)));
        CHECK(wb.keys.empty());
        const auto rows = again.storedEvents();
        REQUIRE(rows.size() == 6);
        for (size_t i = 0; i < 3; ++i)
            CHECK(rows[3 + i] == first[i]);
    }
    {
        Fixture other(inline_, policy, master);  // another key store: other keys
        other.commit(batchOf(1, request(day1, 1, false)));
        CHECK(other.storedEvents()[0][1] != first[0][1]);
    }
}

TEST_CASE("addParsed: events a task parses become rows and dead letters in lane order")
{
    WorkerPool two(2);
    RollingKeys policy(86'400'000);
    Fixture f(two, policy);
    const std::vector<std::string> lines = {event("s-1", "c-1", "a@x.y", "[0]"), "[1,2]",
                                            event("s-2", "c-2", "b@x.y", "[0]"), event("s-3", "c-3", "c@x.y", "[0]")};
    f.transformer->begin(1, kNow);
    REQUIRE(f.transformer
                ->addParsed([&](Transformer::Lane& lane) {
                    // Lane 0 takes the first half, lane 1 the second.
                    const size_t from = lane.index() == 0 ? 0 : 2, to = lane.index() == 0 ? 2 : 4;
                    for (size_t i = from; i < to; ++i) {
                        contract::ParsedEvent ev;
                        contract::Rejection why;
                        const Origin origin{3, static_cast<uint32_t>(i + 100), kNow};
                        if (lane.validator().validate(lines[i], kNow, lane.nowMs(), lane.arena(), ev, why))
                            lane.accept(ev, origin);
                        else
                            lane.reject(std::move(why), origin, lines[i]);
                    }
                })
                .isOk());
    BatchRecord close;
    close.closedAtMs = kNow;
    auto wb = f.transformer->finish(close);
    REQUIRE(wb.isOk());
    CHECK(wb->record.committed == 3);
    REQUIRE(wb->deadLetters.size() == 1);
    CHECK(wb->deadLetters[0].reason == Reason::kNotObject);
    CHECK(wb->deadLetters[0].requestIndex == 3);
    CHECK(wb->deadLetters[0].eventIndex == 101);
    std::vector<std::string> shredded;
    store::CommitTiming timing;
    REQUIRE(f.writer->commit(*wb, shredded, timing).isOk());
    const auto rows = f.storedEvents();
    REQUIRE(rows.size() == 3);
    CHECK(f.decrypt(rows[0][0], rows[0][2]) == "s-1");
    CHECK(f.decrypt(rows[1][0], rows[1][2]) == "s-2");
    CHECK(f.decrypt(rows[2][0], rows[2][2]) == "s-3");
}

TEST_CASE("keys shredded elsewhere are never used again")
{
    InlineExecutor inline_;
    RollingKeys policy(86'400'000);
    Fixture f(inline_, policy);
    const WriteBatch first = f.commit(batchOf(1, request(event("s-1", "c-1", "a@x.y", "[0]"), 1)));
    REQUIRE(first.keys.size() == 1);
    f.transformer->keysShredded({first.keys[0].keyLink});
    const WriteBatch second = f.commit(batchOf(2, request(event("s-1", "c-1", "a@x.y", "[0]"), 2)));
    REQUIRE(second.keys.size() == 1);
    CHECK(second.keys[0].keyLink != first.keys[0].keyLink);
}

TEST_CASE("reportKeyFirstUses: a run lists every stored key it uses, once; off by default")
{
    InlineExecutor inline_;
    DailyKeys policy;
    auto master = randomMasterKey();
    TempDir shared;
    const std::string database = shared.file("keys.db");
    const std::string day1 = event("s-1", "c-1", "a@x.y", "[0]", kNow - 1000);
    const std::string day2 = event("s-2", "c-2", "b@x.y", "[0]", kNow - 86'400'000);
    std::vector<int64_t> stored;
    {
        Fixture first(inline_, policy, master, database);
        const WriteBatch wb = first.commit(batchOf(1, request(day1 + "\n" + day2, 1, false)));
        REQUIRE(wb.keys.size() == 2);
        CHECK(wb.keysFirstUsed.empty());  // not asked for
        for (const KeyRecord& k : wb.keys)
            stored.push_back(k.rowid);
    }
    TransformOptions options;
    options.reportKeyFirstUses = true;
    Fixture again(inline_, policy, master, database, options);
    WriteBatch wb = again.commit(batchOf(2, request(day1 + "\n" + day2 + "\n" + day1, 1, false)));
    CHECK(wb.keys.empty());
    std::vector<int64_t> used = wb.keysFirstUsed;
    std::sort(used.begin(), used.end());
    std::sort(stored.begin(), stored.end());
    CHECK(used == stored);
    wb = again.commit(batchOf(3, request(day2, 2, false)));
    CHECK(wb.keysFirstUsed.empty());  // used before: not listed again
    const std::string day3 = event("s-3", "c-3", "c@x.y", "[0]", kNow - 2 * 86'400'000);
    wb = again.commit(batchOf(4, request(day3, 3, false)));
    CHECK(wb.keys.size() == 1);       // new keys come through `keys`, not as first uses
    CHECK(wb.keysFirstUsed.empty());
}

}  // namespace sluice::transform

namespace sluice::transform {

TEST_CASE("a batch handed on in parts commits what the same batch in one piece commits")
{
    std::vector<std::string> bodies;
    for (int r = 0; r < 6; ++r) {
        std::string body;
        for (int i = 0; i < 20; ++i) {
            const int n = r * 20 + i;
            body += event("s-" + std::to_string(n % 9), "c-" + std::to_string(n % 5), "x@y.z", n % 2 ? "[0,1,2]" : "[0]");
            body += n % 17 == 3 ? "\n[1]\n" : "\n";
        }
        bodies.push_back(body);
    }
    auto contents = [](Fixture& f) {
        std::vector<std::string> out;
        for (const auto& row : f.storedEvents())
            out.push_back(f.decrypt(row[0], row[2]));
        out.push_back(std::to_string(f.count("SELECT count(*) FROM derived_analytics")));
        out.push_back(std::to_string(f.count("SELECT count(*) FROM dead_letters")));
        out.push_back(std::to_string(f.count("SELECT count(*) FROM keys")));
        out.push_back(std::to_string(f.count("SELECT sum(count) FROM agg_revenue_by_country")));
        out.push_back(std::to_string(f.count("SELECT received FROM batches")));
        return out;
    };
    InlineExecutor inline_;
    RollingKeys policy(86'400'000);
    Fixture whole(inline_, policy);
    {
        std::vector<Request> requests;
        for (size_t i = 0; i < bodies.size(); ++i)
            requests.push_back(request(bodies[i], i));
        whole.commit(batchOf(1, std::move(requests)));
    }
    Fixture parts(inline_, policy);
    std::vector<std::string> shredded;
    store::CommitTiming timing;
    parts.transformer->begin(1, kNow);
    std::vector<KeyRecord> keys;
    bool first = true;
    for (size_t i = 0; i < bodies.size(); ++i) {
        std::vector<Request> one;
        one.push_back(request(bodies[i], i));
        REQUIRE(parts.transformer->addRequests(one).isOk());
        if (i % 2 == 1 || !parts.transformer->hasPart())
            continue;  // two adds make one part, sometimes
        WriteBatch part = parts.transformer->takePart();
        CHECK(part.opensBatch == first);
        CHECK_FALSE(part.closesBatch);
        if (first)
            REQUIRE(parts.writer->beginBatch(part, shredded).isOk());
        first = false;
        REQUIRE(parts.writer->writePart(part).isOk());
        for (const KeyRecord& k : part.keys)
            CHECK(k.rowid > 0);
        keys.insert(keys.end(), part.keys.begin(), part.keys.end());
    }
    BatchRecord close;
    close.closedAtMs = kNow;
    auto last = parts.transformer->finish(close);
    REQUIRE(last.isOk());
    CHECK_FALSE(last->opensBatch);
    CHECK(last->closesBatch);
    CHECK(static_cast<int64_t>(last->record.received) == whole.count("SELECT received FROM batches"));
    CHECK(static_cast<int64_t>(last->record.keysCreated) == whole.count("SELECT count(*) FROM keys"));
    REQUIRE(parts.writer->commitBatch(*last, timing).isOk());
    CHECK(contents(parts) == contents(whole));
}

TEST_CASE("a batch given up in the middle leaves nothing behind")
{
    InlineExecutor inline_;
    RollingKeys policy(86'400'000);
    Fixture f(inline_, policy);
    f.transformer->begin(1, kNow);
    std::vector<Request> one;
    one.push_back(request(event("s-1", "c-1", "a@x.y", "[0,1,2]"), 1));
    REQUIRE(f.transformer->addRequests(one).isOk());
    WriteBatch part = f.transformer->takePart();
    std::vector<std::string> shredded;
    REQUIRE(f.writer->beginBatch(part, shredded).isOk());
    REQUIRE(f.writer->writePart(part).isOk());
    CHECK(f.writer->batchOpen());
    f.writer->abortBatch();
    CHECK_FALSE(f.writer->batchOpen());
    CHECK(f.count("SELECT count(*) FROM events_acme_checkout_1_0_0") == 0);
    CHECK(f.count("SELECT count(*) FROM keys") == 0);
    CHECK(f.count("SELECT count(*) FROM derived_analytics") == 0);
}

}  // namespace sluice::transform

namespace sluice::transform {

TEST_CASE("the writer's sketch functions give what the aggregate module's do, whatever the order of calls")
{
    // The writer calls merge twice per upserted row (the sketch and inside its estimate) and
    // remembers the last merge; every answer must still be that of the inputs given.
    auto sketchOf = [](uint64_t first, uint64_t count) {
        aggregate::HyperLogLog h;
        for (uint64_t i = first; i < first + count; ++i)
            h.add(i * 0x9e3779b97f4a7c15ULL ^ (i >> 7));
        return h.serialize();
    };
    const store::SketchFunctions f = sketchFunctions();
    const std::string a = sketchOf(0, 300), b = sketchOf(200, 500), c = sketchOf(0, 30000);
    const std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>> calls = {
        {a, b}, {a, b}, {b, a}, {a, c}, {a, c}, {std::nullopt, b}, {a, std::nullopt}, {std::nullopt, std::nullopt},
        {c, c}, {a, b}};
    for (const auto& [x, y] : calls) {
        auto viewOf = [](const std::optional<std::string>& s) -> std::optional<std::string_view> {
            return s ? std::optional<std::string_view>(*s) : std::nullopt;
        };
        auto got = f.merge(viewOf(x), viewOf(y));
        auto want = aggregate::mergeSerialized(viewOf(x), viewOf(y));
        REQUIRE(got);
        REQUIRE(want);
        CHECK(*got == *want);
        auto estimate = f.estimate(*got);
        REQUIRE(estimate);
        CHECK(*estimate == aggregate::estimateSerialized(*want).value());
        // An estimate of a sketch that is not the last merge's.
        CHECK(f.estimate(a).value() == aggregate::estimateSerialized(a).value());
    }
    CHECK_FALSE(f.merge(std::string_view("\x01\x05", 2), std::nullopt));
    CHECK(f.merge(a, b).value() == aggregate::mergeSerialized(a, b).value());
}

}  // namespace sluice::transform
