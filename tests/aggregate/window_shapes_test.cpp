// Sliding and session windows (issue 14): each against a plain model of its semantics, with
// random batch cuts, one batch, and a restart from what the database holds; plus the cases
// the models must get right (merges across batches, late events, finality).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "aggregate/aggregator.h"
#include "aggregate/window.h"
#include "fixtures.h"
#include "make_aggregator.h"
#include "mini_db.h"

using namespace sluice;
using namespace sluice::aggregate;
using namespace sluice::aggregate::testing;

namespace {

// A flush with a session snapshot (session_snapshot_interval 0: every batch), so that the
// table holds every open session.
void flushInto(Aggregator& a, MiniDb& db)
{
    static uint64_t batch = 0;
    Arena arena;
    WriteBatch wb;
    a.flush(arena, wb, ++batch);
    db.apply(wb);
}

void addOne(Aggregator& a, const Ev& e)
{
    auto fields = e.fields();
    a.add(e.time, e.consent, fields);
}

// The metrics both models keep per window.
struct Metrics {
    int64_t count = 0;
    double sumTotal = 0;
    int64_t nTotal = 0;
    std::optional<double> maxTotal;
    std::set<std::string> customers;

    void add(const Ev& e)
    {
        ++count;
        if (e.total) {
            sumTotal += *e.total;
            ++nTotal;
            maxTotal = std::max(maxTotal.value_or(*e.total), *e.total);
        }
        if (e.customer)
            customers.insert(*e.customer);
    }
    void merge(const Metrics& o)
    {
        count += o.count;
        sumTotal += o.sumTotal;
        nTotal += o.nTotal;
        if (o.maxTotal)
            maxTotal = std::max(maxTotal.value_or(*o.maxTotal), *o.maxTotal);
        customers.insert(o.customers.begin(), o.customers.end());
    }
};

std::string groupKeyOf(const Ev& e) { return e.country ? "[\"" + *e.country + "\"]" : "[null]"; }

// What a session window stores for a PII group value: 16 hex digits of its keyed hash.
std::string pseudonym(const std::string& value)
{
    const uint64_t h = SipHash24(kHashKey)("g" + value);
    std::string out;
    for (int i = 15; i >= 0; --i)
        out += "0123456789abcdef"[(h >> (4 * i)) & 0xf];
    return out;
}

// Compares a table row with the model's metrics; `estimate` of distinct(customer_id) within the
// sketch's error, subjects exactly.
void checkRow(const MiniTable& t, const Row& row, const Metrics& m)
{
    CHECK(t.at(row, "count") == Owned::ofInt(m.count));
    CHECK(t.at(row, "sum_total") == Owned::ofReal(m.sumTotal));
    CHECK(t.at(row, "n_total") == Owned::ofInt(m.nTotal));
    CHECK(t.at(row, "max_total") == (m.maxTotal ? Owned::ofReal(*m.maxTotal) : Owned::null()));
    const double exact = static_cast<double>(m.customers.size());
    CHECK(std::abs(t.at(row, "distinct_customer_id").d - exact) <= std::max(1.0, 0.025 * exact));
    CHECK(t.at(row, "subjects") ==
          Owned::ofInt(static_cast<int64_t>(std::min(m.customers.size(), SubjectSet::kExactLimit + 1))));
}

AggregationSpec shapeSpec(WindowKind kind)
{
    AggregationSpec a = revenueByCountry();
    a.name = "shape";
    a.window = kind;
    a.metrics = {metric(MetricKind::kCount), metric(MetricKind::kSum, "total"), metric(MetricKind::kMax, "total"),
                 metric(MetricKind::kDistinct, "customer_id")};
    a.minGroupSize = 1;
    return a;
}

// Mostly in order with jitter, a few events minutes behind; country decides the group.
std::vector<Ev> randomStream(size_t n, uint64_t seed, int64_t step, int groups)
{
    std::mt19937_64 rng(seed);
    auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
    std::vector<Ev> events(n);
    int64_t cursor = kT;
    for (Ev& e : events) {
        cursor += uniform(0, 2 * step);
        const int64_t r = uniform(0, 99);
        e.time = cursor - (r < 80 ? uniform(0, 3 * kSecond) : r < 96 ? uniform(0, 40 * kSecond) : uniform(0, 6 * kMinute));
        e.consent = uniform(0, 9) == 0 ? ConsentMask{2} : kAllConsent;  // 1 in 10 without level 0
        e.country = std::string(1, 'C');
        *e.country += std::to_string(uniform(0, groups - 1));
        e.total = uniform(0, 9) == 0 ? std::nullopt : std::optional(0.25 * static_cast<double>(uniform(0, 4000)));
        e.customer = uniform(0, 19) == 0 ? std::nullopt : std::optional("c-" + std::to_string(uniform(0, 400)));
    }
    return events;
}

// Rows of the database table with final = 0, as the daemon reads them back at start.
void restoreFrom(const MiniDb& db, const std::string& table, Aggregator& a)
{
    if (!db.has(table))
        return;
    const MiniTable& t = db.table(table);
    for (const auto& [key, row] : t.rows) {
        if (t.at(row, "final").i != 0)
            continue;
        std::vector<Cell> cells;
        for (const Owned& v : row) {
            switch (v.kind) {
            case Cell::Kind::kNull: cells.push_back(Cell::null()); break;
            case Cell::Kind::kInt: cells.push_back(Cell::ofInt(v.i)); break;
            case Cell::Kind::kReal: cells.push_back(Cell::ofReal(v.d)); break;
            case Cell::Kind::kText: cells.push_back(Cell::ofText(v.text)); break;
            case Cell::Kind::kBlob: cells.push_back(Cell::ofBlob(v.text)); break;
            }
        }
        Status s = a.restoreOpenWindow(cells);
        INFO(s.message());
        REQUIRE(s.isOk());
    }
}

// The daemon's start with a snapshot: the snapshot's sessions and max event time, then the
// events of the batches after it (`batchEnds[k]`: where batch k + 1 ends in `events`), up to
// `upTo`, replayed.
void restoreSnapshot(const MiniDb& db, Aggregator& a, const std::vector<Ev>& events,
                     const std::vector<size_t>& batchEnds, size_t upTo)
{
    const MiniTable& record = db.table("session_snapshots");
    auto it = record.rows.find(Row{Owned::ofText(a.table().name())});
    REQUIRE(it != record.rows.end());
    const Owned& max = record.at(it->second, "max_event_time");
    a.restoreSnapshot(max.isNull() ? std::nullopt : std::optional(max.i));
    if (db.has("session_snapshot_rows")) {
        const MiniTable& states = db.table("session_snapshot_rows");
        for (const auto& [key, row] : states.rows) {
            if (key[0].text != a.table().name())
                continue;
            Status s = a.restoreSnapshotRow(states.at(row, "state").text);
            INFO(s.message());
            REQUIRE(s.isOk());
        }
    }
    const auto batch = static_cast<size_t>(record.at(it->second, "batch_id").i);
    REQUIRE(batch >= 1);
    REQUIRE(batch <= batchEnds.size());
    for (size_t i = batchEnds[batch - 1]; i < upTo; ++i) {
        addOne(a, events[i]);
        if (i % 97 == 0)
            a.replayed();
    }
    a.replayed();
}

// Session windows the daemon's way: batches of random size, a snapshot now and then, and
// restarts (the process's memory lost at a batch boundary: the snapshot read back and the
// batches after it replayed) between snapshots; a last snapshot at the end (a clean shutdown).
void runWithSnapshots(const AggregationSpec& spec, const std::vector<Ev>& events, uint64_t seed, MiniDb& db,
                      int& restarts)
{
    std::mt19937_64 rng(seed);
    std::vector<size_t> batchEnds;
    auto agg = std::make_unique<Aggregator>(make(spec));
    for (size_t i = 0; i < events.size();) {
        const size_t n = std::min<size_t>(1 + rng() % 300, events.size() - i);
        for (size_t k = i; k < i + n; ++k)
            addOne(*agg, events[k]);
        i += n;
        batchEnds.push_back(i);
        const uint64_t batch = batchEnds.size();
        Arena arena;
        WriteBatch wb;
        // The first batch of a new aggregation always carries one (snapshotDue).
        const bool snapshot = agg->snapshotDue() || rng() % 6 == 0;
        const FlushSummary summary = agg->flush(arena, wb, snapshot ? std::optional(batch) : std::nullopt);
        CHECK(summary.snapshot == snapshot);
        db.apply(wb);
        if (rng() % 5 == 0) {
            agg = std::make_unique<Aggregator>(make(spec));
            restoreSnapshot(db, *agg, events, batchEnds, i);
            ++restarts;
        }
    }
    Arena arena;
    WriteBatch wb;
    agg->flush(arena, wb, batchEnds.size());
    db.apply(wb);
    // The snapshot rows are exactly the open sessions of agg_<name>.
    const MiniTable& t = db.table(spec.tableName());
    const MiniTable& states = db.table("session_snapshot_rows");
    size_t open = 0;
    for (const auto& [key, row] : t.rows)
        if (t.at(row, "final").i == 0) {
            ++open;
            CHECK(states.rows.count(Row{Owned::ofText(spec.name), key[0], key[1]}) == 1);
        }
    CHECK(states.rows.size() == open);
    CHECK(agg->openWindows() == open);
}

// Three runs of the same stream must give identical tables: random batch cuts, one batch, and
// batches of 250 with the process replaced half-way (watermark and open windows read back).
void runThreeWays(const AggregationSpec& spec, const std::vector<Ev>& events, MiniDb& a, MiniDb& b, MiniDb& c)
{
    std::mt19937_64 rng(99);
    {
        Aggregator agg = make(spec);
        for (size_t i = 0; i < events.size();) {
            const size_t n = std::min<size_t>(1 + rng() % 400, events.size() - i);
            for (size_t k = i; k < i + n; ++k)
                addOne(agg, events[k]);
            flushInto(agg, a);
            i += n;
        }
    }
    {
        Aggregator agg = make(spec);
        for (const Ev& e : events)
            addOne(agg, e);
        flushInto(agg, b);
    }
    {
        const size_t half = events.size() / 2;
        auto first = std::make_unique<Aggregator>(make(spec));
        for (size_t i = 0; i < half; ++i) {
            addOne(*first, events[i]);
            if (i % 250 == 249)
                flushInto(*first, c);
        }
        flushInto(*first, c);
        first.reset();
        Aggregator second = make(spec);
        const MiniTable& w = c.table("watermarks");
        second.setMaxEventTimeMs(w.at(w.rows.begin()->second, "max_event_time").i);
        restoreFrom(c, spec.tableName(), second);
        for (size_t i = half; i < events.size(); ++i) {
            addOne(second, events[i]);
            if (i % 250 == 249)
                flushInto(second, c);
        }
        flushInto(second, c);
    }
    for (const std::string& name : {spec.tableName(), std::string("late_events"), std::string("watermarks")}) {
        INFO(name);
        CHECK(a.table(name).rows == b.table(name).rows);
        CHECK(a.table(name).rows == c.table(name).rows);
    }
}

}  // namespace

TEST_CASE("sliding windows equal a model of every window an event falls in", "[aggregator][sliding][model]")
{
    AggregationSpec spec = shapeSpec(WindowKind::kSliding);
    spec.windowMs = 5 * kMinute;
    spec.slideMs = kMinute;
    spec.allowedLatenessMs = 90 * kSecond;
    spec.consent = {0};
    const auto events = randomStream(12'000, 41, 60, 4);

    std::map<std::pair<int64_t, std::string>, Metrics> model;
    std::map<int64_t, int64_t> modelLate;
    std::optional<int64_t> modelMax;
    for (const Ev& e : events) {
        if (e.consent & 1) {
            for (int64_t s = windowStart(e.time, spec.slideMs); s > e.time - spec.windowMs; s -= spec.slideMs) {
                if (modelMax && s + spec.windowMs <= *modelMax - spec.allowedLatenessMs)
                    ++modelLate[s];
                else
                    model[{s, groupKeyOf(e)}].add(e);
            }
        }
        modelMax = std::max(modelMax.value_or(e.time), e.time);
    }
    REQUIRE(modelLate.size() > 3);

    MiniDb a, b, c;
    runThreeWays(spec, events, a, b, c);
    const MiniTable& t = a.table(spec.tableName());
    CHECK(t.rows.size() == model.size());
    const int64_t watermark = *modelMax - spec.allowedLatenessMs;
    int finals = 0;
    for (const auto& [key, m] : model) {
        INFO("window " << key.first << " group " << key.second);
        auto it = t.rows.find(Row{Owned::ofInt(key.first), Owned::ofText(key.second)});
        REQUIRE(it != t.rows.end());
        checkRow(t, it->second, m);
        const bool final = key.first + spec.windowMs <= watermark;
        finals += final;
        CHECK(t.at(it->second, "final") == Owned::ofInt(final ? 1 : 0));
    }
    CHECK(finals > 0);
    const MiniTable& late = a.table("late_events");
    CHECK(late.rows.size() == modelLate.size());
    for (const auto& [start, n] : modelLate)
        CHECK(late.at(late.rows.at(Row{Owned::ofText("shape"), Owned::ofInt(start)}), "events") == Owned::ofInt(n));
}

TEST_CASE("a sliding window of size = slide is the tumbling window", "[aggregator][sliding]")
{
    AggregationSpec tumbling = shapeSpec(WindowKind::kTumbling);
    tumbling.allowedLatenessMs = 20 * kSecond;
    AggregationSpec sliding = tumbling;
    sliding.window = WindowKind::kSliding;
    sliding.slideMs = tumbling.windowMs;
    const auto events = randomStream(3000, 5, 100, 3);
    MiniDb x, y;
    Aggregator a = make(tumbling), b = make(sliding);
    for (size_t i = 0; i < events.size(); ++i) {
        addOne(a, events[i]);
        addOne(b, events[i]);
        if (i % 300 == 0) {
            flushInto(a, x);
            flushInto(b, y);
        }
    }
    flushInto(a, x);
    flushInto(b, y);
    CHECK(x.table("agg_shape").rows == y.table("agg_shape").rows);
    CHECK(x.table("late_events").rows == y.table("late_events").rows);
}

TEST_CASE("session windows merge when an event bridges two, across batches", "[aggregator][session]")
{
    AggregationSpec spec = shapeSpec(WindowKind::kSession);
    spec.gapMs = 10 * kSecond;
    spec.allowedLatenessMs = kMinute;
    spec.groupBy = {"customer_id"};  // the data subject bounds a session (a pseudonym is stored)
    MiniDb db;
    Aggregator a = make(spec);
    auto ev = [](int64_t offsetMs, double total) {
        Ev e;
        e.time = kT + offsetMs;
        e.customer = "ann";
        e.total = total;
        return e;
    };
    addOne(a, ev(0, 1));
    addOne(a, ev(5 * kSecond, 2));   // within the gap: one session [0, 5s]
    addOne(a, ev(30 * kSecond, 4));  // 25 s later: a second session
    flushInto(a, db);
    const MiniTable& t = db.table("agg_shape");
    REQUIRE(t.rows.size() == 2);
    const std::string key = t.rows.begin()->first[1].text;
    CHECK(key.size() == 20);  // ["<16 hex digits>"]: the pseudonym of "ann", never "ann"
    CHECK(key.find("ann") == std::string::npos);
    auto row = [&](int64_t offsetMs) -> const Row* {
        auto it = t.rows.find(Row{Owned::ofInt(kT + offsetMs), Owned::ofText(key)});
        return it == t.rows.end() ? nullptr : &it->second;
    };
    REQUIRE(row(0));
    CHECK(t.at(*row(0), "window_end") == Owned::ofInt(kT + 15 * kSecond));
    CHECK(t.at(*row(0), "count") == Owned::ofInt(2));
    REQUIRE(row(30 * kSecond));
    CHECK(a.openWindows() == 2);

    // An event at 14 s extends the first (9 s after its last event; 16 s before the second);
    // one at 21 s then bridges [0, 14] and [30].
    addOne(a, ev(14 * kSecond, 8));
    flushInto(a, db);
    CHECK(t.rows.size() == 2);
    CHECK(t.at(*row(0), "count") == Owned::ofInt(3));
    addOne(a, ev(21 * kSecond, 16));
    flushInto(a, db);
    REQUIRE(t.rows.size() == 1);  // the row of the session that started at 30 s was deleted
    REQUIRE(row(0));
    CHECK(t.at(*row(0), "count") == Owned::ofInt(5));
    CHECK(t.at(*row(0), "sum_total") == Owned::ofReal(31));
    CHECK(t.at(*row(0), "window_end") == Owned::ofInt(kT + 40 * kSecond));
    CHECK(t.at(*row(0), "final") == Owned::ofInt(0));
    CHECK(a.openWindows() == 1);

    // An event before the start moves the start: the row moves to the new key.
    addOne(a, ev(-4 * kSecond, 32));
    flushInto(a, db);
    REQUIRE(t.rows.size() == 1);
    REQUIRE(row(-4 * kSecond));
    CHECK(t.at(*row(-4 * kSecond), "count") == Owned::ofInt(6));

    // Far ahead in time (another customer): the watermark passes the session's end: final.
    Ev other = ev(10 * kMinute, 1);
    other.customer = "bob";
    addOne(a, other);
    flushInto(a, db);
    CHECK(t.at(*row(-4 * kSecond), "final") == Owned::ofInt(1));
    CHECK(a.openWindows() == 1);  // bob's
    // Ann again, within the gap after her final session: it stays final; a new session starts
    // (the event's own session [t, t + gap) has not ended at the watermark).
    addOne(a, ev(10 * kMinute - 55 * kSecond, 64));
    // And one whose own session would have ended: late, counted under its time.
    addOne(a, ev(kSecond, 128));
    flushInto(a, db);
    CHECK(t.at(*row(-4 * kSecond), "count") == Owned::ofInt(6));
    REQUIRE(row(10 * kMinute - 55 * kSecond));
    CHECK(t.at(*row(10 * kMinute - 55 * kSecond), "count") == Owned::ofInt(1));
    CHECK(db.table("late_events").rows.size() == 1);
    CHECK(a.counters().late == 1);
}

TEST_CASE("session windows equal a model of merging runs, across batches and a restart", "[aggregator][session][model]")
{
    AggregationSpec spec = shapeSpec(WindowKind::kSession);
    spec.gapMs = 20 * kSecond;
    spec.allowedLatenessMs = 45 * kSecond;
    spec.groupBy = {"country", "session_id"};
    spec.consent = {0};
    auto events = randomStream(15'000, 77, 150, 3);
    std::mt19937_64 rng(8);
    for (Ev& e : events)
        e.session = "s-" + std::to_string(rng() % 40);

    // The model: per group, sessions (first, last, metrics); an event joins every open session
    // within gap of it; final sessions (last + gap <= watermark) never change again.
    struct Session {
        int64_t first, last;
        Metrics m;
    };
    std::map<std::string, std::vector<Session>> groups;
    std::map<int64_t, int64_t> modelLate;
    std::optional<int64_t> modelMax;
    for (const Ev& e : events) {
        if (e.consent & 1) {
            const std::string key = groupKeyOf(e) + "|" + *e.session;
            auto& sessions = groups[key];
            const bool haveWm = modelMax.has_value();
            const int64_t wm = modelMax.value_or(0) - spec.allowedLatenessMs;
            std::vector<size_t> bridged;
            for (size_t i = 0; i < sessions.size(); ++i) {
                const Session& s = sessions[i];
                const bool final = haveWm && s.last + spec.gapMs <= wm;
                if (!final && e.time >= s.first - spec.gapMs && e.time <= s.last + spec.gapMs)
                    bridged.push_back(i);
            }
            if (bridged.empty() && haveWm && e.time + spec.gapMs <= wm) {
                ++modelLate[e.time];
            } else {
                Session merged{e.time, e.time, {}};
                merged.m.add(e);
                for (size_t i : bridged) {
                    merged.first = std::min(merged.first, sessions[i].first);
                    merged.last = std::max(merged.last, sessions[i].last);
                    merged.m.merge(sessions[i].m);
                }
                for (auto i = bridged.rbegin(); i != bridged.rend(); ++i)
                    sessions.erase(sessions.begin() + static_cast<long>(*i));
                sessions.push_back(merged);
            }
        }
        modelMax = std::max(modelMax.value_or(e.time), e.time);
    }
    size_t modelSessions = 0;
    for (const auto& [key, sessions] : groups)
        modelSessions += sessions.size();
    REQUIRE(modelLate.size() > 3);
    REQUIRE(modelSessions > 100);

    MiniDb a, b, c;
    runThreeWays(spec, events, a, b, c);
    int restarts = 0;
    for (uint64_t seed : {5, 6, 7}) {
        MiniDb d;
        runWithSnapshots(spec, events, seed, d, restarts);
        for (const std::string& name : {spec.tableName(), std::string("late_events"), std::string("watermarks")}) {
            INFO(name << " seed " << seed);
            CHECK(a.table(name).rows == d.table(name).rows);
        }
    }
    CHECK(restarts > 30);
    const MiniTable& t = a.table(spec.tableName());
    CHECK(t.rows.size() == modelSessions);
    const int64_t watermark = *modelMax - spec.allowedLatenessMs;
    size_t matched = 0, finals = 0, merges = 0;
    for (const auto& [key, sessions] : groups) {
        // The stored group key: the country, then the session id's pseudonym.
        const size_t bar = key.find('|');
        std::string tableKey(key, 0, bar - 1);  // ["C1"] without its ]
        tableKey += ",\"";
        tableKey += pseudonym(std::string(key, bar + 1));
        tableKey += "\"]";
        for (const Session& s : sessions) {
            INFO("group " << tableKey << " session " << s.first << ".." << s.last);
            auto it = t.rows.find(Row{Owned::ofInt(s.first), Owned::ofText(tableKey)});
            REQUIRE(it != t.rows.end());
            ++matched;
            CHECK(t.at(it->second, "window_end") == Owned::ofInt(s.last + spec.gapMs));
            checkRow(t, it->second, s.m);
            const bool final = s.last + spec.gapMs <= watermark;
            finals += final;
            CHECK(t.at(it->second, "final") == Owned::ofInt(final ? 1 : 0));
            merges += s.m.count > 1;
        }
    }
    CHECK(matched == modelSessions);
    CHECK(finals > 0);
    CHECK(finals < modelSessions);
    CHECK(merges > 0);
    const MiniTable& late = a.table("late_events");
    CHECK(late.rows.size() == modelLate.size());
    for (const auto& [start, n] : modelLate)
        CHECK(late.at(late.rows.at(Row{Owned::ofText("shape"), Owned::ofInt(start)}), "events") == Owned::ofInt(n));
}

TEST_CASE("a reload hands a session aggregation's open sessions to its successor", "[aggregator][session]")
{
    AggregationSpec spec = shapeSpec(WindowKind::kSession);
    spec.gapMs = 10 * kSecond;
    spec.groupBy = {"session_id"};
    Aggregator before = make(spec);
    Ev e;
    e.time = kT;
    e.session = "s-1";
    addOne(before, e);
    MiniDb db;
    flushInto(before, db);
    CHECK(before.openWindows() == 1);

    AggregationSpec later = spec;
    later.allowedLatenessMs = kMinute;  // a new definition of the same table
    Aggregator after = make(later);
    REQUIRE(after.adoptOpenWindows(before));
    CHECK(after.openWindows() == 1);
    CHECK(before.openWindows() == 0);
    e.time = kT + 5 * kSecond;
    addOne(after, e);
    flushInto(after, db);
    REQUIRE(db.table("agg_shape").rows.size() == 1);
    CHECK(db.table("agg_shape").at(db.table("agg_shape").rows.begin()->second, "count") == Owned::ofInt(2));

    AggregationSpec otherGap = spec;
    otherGap.gapMs = 20 * kSecond;
    Aggregator other = make(otherGap);
    CHECK_FALSE(other.adoptOpenWindows(after));
    CHECK(after.openWindows() == 1);
}

TEST_CASE("restoring a corrupt open session row fails with the table named", "[aggregator][session]")
{
    AggregationSpec spec = shapeSpec(WindowKind::kSession);
    spec.gapMs = kSecond;
    spec.groupBy = {"session_id"};
    Aggregator a = make(spec);
    std::vector<Cell> row(a.table().columns().size(), Cell::ofInt(0));
    row[AggregationTable::kGroupKeyColumn] = Cell::ofText("[\"x\"]");
    row[static_cast<size_t>(a.table().distinctFields()[0].sketchColumn)] = Cell::ofBlob("\x09");
    row[static_cast<size_t>(a.table().subjectSetColumn())] = Cell::ofBlob(std::string_view("\x03\x00", 2));
    Status s = a.restoreOpenWindow(row);
    REQUIRE_FALSE(s);
    CHECK_THAT(s.message(), Catch::StartsWith("agg_shape: "));
    CHECK_FALSE(a.restoreOpenWindow(std::span<const Cell>(row).first(3)));
    CHECK(a.openWindowsQuery() ==
          "SELECT \"window_start\", \"group_key\", \"window_end\", \"session_id\", \"count\", \"sum_total\", "
          "\"n_total\", \"max_total\", \"distinct_customer_id\", \"subjects\", \"final\", \"hll_customer_id\", "
          "\"subject_set\" FROM \"agg_shape\" WHERE \"final\" = 0");
    CHECK(make(shapeSpec(WindowKind::kTumbling)).openWindowsQuery().empty());
}
