#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
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

struct Output {
    Arena arena;
    WriteBatch batch;
    std::vector<UpsertRows>& upserts = batch.upserts;
    std::vector<Finalize>& finalizes = batch.finalizes;
    FlushSummary summary;

    const UpsertRows* find(const std::string& table) const
    {
        for (const UpsertRows& u : upserts)
            if (u.table == table)
                return &u;
        return nullptr;
    }
};

std::unique_ptr<Output> flushOf(Aggregator& a)
{
    auto out = std::make_unique<Output>();
    out->summary = a.flush(out->arena, out->batch);
    return out;
}

void addAll(Aggregator& a, const std::vector<Ev>& events)
{
    for (const Ev& e : events) {
        auto fields = e.fields();
        a.add(e.time, e.consent, fields);
    }
}

ConsentMask levels(std::initializer_list<int> list)
{
    ConsentMask m = 0;
    for (int l : list)
        m |= ConsentMask{1} << l;
    return m;
}

// The agg_* row of (window start, group key) in `db`, or nullptr.
const Row* rowOf(const MiniDb& db, const std::string& table, int64_t start, const std::string& groupKey)
{
    const MiniTable& t = db.table(table);
    auto it = t.rows.find(Row{Owned::ofInt(start), Owned::ofText(groupKey)});
    return it == t.rows.end() ? nullptr : &it->second;
}

int64_t lateCount(const MiniDb& db, const std::string& aggregation, int64_t start)
{
    if (!db.has("late_events"))
        return 0;
    const MiniTable& t = db.table("late_events");
    auto it = t.rows.find(Row{Owned::ofText(aggregation), Owned::ofInt(start)});
    return it == t.rows.end() ? 0 : t.at(it->second, "events").i;
}

}  // namespace

TEST_CASE("each metric over windows of 1s, 1m, 1h and 1d, around the epoch and before it", "[aggregator]")
{
    for (int64_t width : {kSecond, kMinute, kHour, kDay}) {
        for (int64_t base : {int64_t{0}, -width, windowStart(kT, width), -3 * width, windowStart(kT, width) + width}) {
            INFO("width " << width << " window start " << base);
            const AggregationSpec spec = everyMetric(width, 10 * width);
            Aggregator a = make(spec);
            std::vector<Ev> events(5);
            events[0].time = base;
            events[0].total = 1.5, events[0].items = 2, events[0].customer = "c1";
            events[1].time = base + width / 2;
            events[1].total = 2.25, events[1].items = -7, events[1].customer = "c2";
            events[2].time = base + width - 1;  // the last instant of the window
            events[2].customer = "c1";           // total and items missing
            events[3].time = base + width;       // the next window
            events[3].total = -4.0, events[3].items = 5, events[3].customer = "c3";
            events[4].time = base - 1;           // the previous window, out of order
            events[4].total = 8, events[4].items = 1;
            addAll(a, events);

            auto out = flushOf(a);
            CHECK(out->summary.groupRows == 3);
            CHECK(out->summary.lateEvents == 0);
            MiniDb db;
            db.apply(out->batch);
            const MiniTable& t = db.table("agg_every_metric");
            REQUIRE(t.rows.size() == 3);

            const Row* w = rowOf(db, "agg_every_metric", base, "[\"NL\"]");
            REQUIRE(w);
            CHECK(t.at(*w, "country") == Owned::ofText("NL"));
            CHECK(t.at(*w, "count") == Owned::ofInt(3));
            CHECK(t.at(*w, "sum_total") == Owned::ofReal(3.75));
            CHECK(t.at(*w, "n_total") == Owned::ofInt(2));
            CHECK(t.at(*w, "min_total") == Owned::ofReal(1.5));
            CHECK(t.at(*w, "max_total") == Owned::ofReal(2.25));
            CHECK(t.at(*w, "sum_items") == Owned::ofInt(-5));
            CHECK(t.at(*w, "n_items") == Owned::ofInt(2));
            CHECK(t.at(*w, "min_items") == Owned::ofInt(-7));
            CHECK(t.at(*w, "max_items") == Owned::ofInt(2));
            CHECK(std::round(t.at(*w, "distinct_customer_id").d) == 2);
            CHECK(t.at(*w, "final") == Owned::ofInt(0));

            const Row* next = rowOf(db, "agg_every_metric", base + width, "[\"NL\"]");
            REQUIRE(next);
            CHECK(t.at(*next, "count") == Owned::ofInt(1));
            CHECK(t.at(*next, "sum_total") == Owned::ofReal(-4.0));
            CHECK(t.at(*next, "min_items") == Owned::ofInt(5));
            CHECK(std::round(t.at(*next, "distinct_customer_id").d) == 1);

            const Row* previous = rowOf(db, "agg_every_metric", base - width, "[\"NL\"]");
            REQUIRE(previous);
            CHECK(t.at(*previous, "count") == Owned::ofInt(1));
            CHECK(t.at(*previous, "max_total") == Owned::ofReal(8.0));
            CHECK(t.at(*previous, "distinct_customer_id") == Owned::ofReal(0.0));

            // Ten windows later, all three are final.
            Ev late;
            late.time = base + 20 * width;
            addAll(a, {late});
            auto out2 = flushOf(a);
            REQUIRE(out2->finalizes.size() == 1);
            CHECK(out2->finalizes[0].table == "agg_every_metric");
            CHECK(out2->finalizes[0].toMs == base + 9 * width);
            db.apply(out2->batch);
            CHECK(t.at(*rowOf(db, "agg_every_metric", base, "[\"NL\"]"), "final") == Owned::ofInt(1));
            CHECK(t.at(*rowOf(db, "agg_every_metric", base - width, "[\"NL\"]"), "final") == Owned::ofInt(1));
            CHECK(t.at(*rowOf(db, "agg_every_metric", base + 20 * width, "[\"NL\"]"), "final") == Owned::ofInt(0));
        }
    }
}

TEST_CASE("group keys are canonical JSON arrays; missing values are null", "[aggregator]")
{
    AggregationSpec spec = revenueByCountry();
    spec.groupBy = {"country", "device", "vip", "items", "ratio"};
    spec.metrics = {metric(MetricKind::kCount)};
    Aggregator a = make(spec);

    auto add = [&](std::vector<Value> fields) { a.add(kT, kAllConsent, fields); };
    auto fields = [](Value country, Value device, Value vip, Value items, Value ratio) {
        std::vector<Value> v(12);
        v[kCountry] = country, v[kDevice] = device, v[kVip] = vip, v[kItems] = items, v[kRatio] = ratio;
        return v;
    };
    const Value none;
    const std::string odd = "a\"b\\c\n\x01";
    add(fields(Value::ofString("NL"), Value::ofString("ios"), Value::ofBool(true), Value::ofInt(3), Value::ofReal(2.5)));
    add(fields(none, none, none, none, none));
    add(fields(Value::ofString(odd), none, Value::ofBool(false), none, none));
    add(fields(Value::ofString("NL"), none, none, none, Value::ofInt(3)));      // a number field given as 3
    add(fields(Value::ofString("NL"), none, none, none, Value::ofReal(3.0)));   // and as 3.0: one group
    add(fields(Value::ofString("NL"), none, none, none, Value::ofReal(-0.0)));  // -0 and 0: one group
    add(fields(Value::ofString("NL"), none, none, none, Value::ofReal(0.0)));
    add(fields(Value::ofString("NL"), none, none, none,
               Value::ofReal(std::numeric_limits<double>::quiet_NaN())));  // NaN reads as missing
    add(fields(Value::ofString("NL"), none, none, Value::ofReal(4.0), none));  // wrong kind: missing
    add(fields(Value::ofString(""), none, none, none, none));

    auto out = flushOf(a);
    MiniDb db;
    db.apply(out->batch);
    const MiniTable& t = db.table("agg_revenue_by_country");

    struct Expect {
        std::string key;
        int64_t count;
    };
    const Expect expected[] = {
        {"[\"NL\",\"ios\",true,3,2.5]", 1},
        {"[null,null,null,null,null]", 1},
        {"[\"a\\\"b\\\\c\\n\\u0001\",null,false,null,null]", 1},
        {"[\"NL\",null,null,null,3]", 2},
        {"[\"NL\",null,null,null,0]", 2},
        {"[\"NL\",null,null,null,null]", 2},
        {"[\"\",null,null,null,null]", 1},
    };
    CHECK(t.rows.size() == std::size(expected));
    for (const Expect& e : expected) {
        INFO(e.key);
        const Row* row = rowOf(db, "agg_revenue_by_country", kT, e.key);
        REQUIRE(row);
        CHECK(t.at(*row, "count") == Owned::ofInt(e.count));
    }
    const Row* full = rowOf(db, "agg_revenue_by_country", kT, "[\"NL\",\"ios\",true,3,2.5]");
    CHECK(t.at(*full, "country") == Owned::ofText("NL"));
    CHECK(t.at(*full, "device") == Owned::ofText("ios"));
    CHECK(t.at(*full, "vip") == Owned::ofInt(1));
    CHECK(t.at(*full, "items") == Owned::ofInt(3));
    CHECK(t.at(*full, "ratio") == Owned::ofReal(2.5));
    const Row* empty = rowOf(db, "agg_revenue_by_country", kT, "[null,null,null,null,null]");
    for (const char* column : {"country", "device", "vip", "items", "ratio"})
        CHECK(t.at(*empty, column).isNull());
    CHECK(t.at(*rowOf(db, "agg_revenue_by_country", kT, "[\"NL\",null,null,null,3]"), "ratio") == Owned::ofReal(3.0));
    CHECK(t.at(*rowOf(db, "agg_revenue_by_country", kT, "[\"a\\\"b\\\\c\\n\\u0001\",null,false,null,null]"), "country") ==
          Owned::ofText(odd));

    // The empty string is text, not NULL, and its cell carries a real pointer.
    const UpsertRows* rows = out->find("agg_revenue_by_country");
    REQUIRE(rows);
    bool sawEmpty = false;
    for (const Cell& c : rows->cells)
        if (c.kind == Cell::Kind::kText && c.text().empty()) {
            sawEmpty = true;
            CHECK(c.text().data() != nullptr);
        }
    CHECK(sawEmpty);
}

TEST_CASE("missing and NaN numeric values count for count only", "[aggregator]")
{
    Aggregator a = make(everyMetric(kMinute));
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<Ev> events(6);
    for (Ev& e : events)
        e.time = kT;
    events[0].total = nan;
    events[1].total = inf;
    events[2].total = -inf;
    events[3].total = 2.0;
    events[3].items = 4;
    events[4].country = "BE";  // a group where every metric field is missing
    events[5].country = "BE";
    events[5].total = nan;
    addAll(a, events);

    auto out = flushOf(a);
    MiniDb db;
    db.apply(out->batch);
    const MiniTable& t = db.table("agg_every_metric");
    const Row* nl = rowOf(db, "agg_every_metric", kT, "[\"NL\"]");
    REQUIRE(nl);
    CHECK(t.at(*nl, "count") == Owned::ofInt(4));
    CHECK(t.at(*nl, "n_total") == Owned::ofInt(1));
    CHECK(t.at(*nl, "sum_total") == Owned::ofReal(2.0));
    CHECK(t.at(*nl, "min_total") == Owned::ofReal(2.0));
    CHECK(t.at(*nl, "max_total") == Owned::ofReal(2.0));
    CHECK(t.at(*nl, "n_items") == Owned::ofInt(1));

    const Row* be = rowOf(db, "agg_every_metric", kT, "[\"BE\"]");
    REQUIRE(be);
    CHECK(t.at(*be, "count") == Owned::ofInt(2));
    CHECK(t.at(*be, "sum_total") == Owned::ofReal(0.0));  // the view shows NULL: n_total = 0
    CHECK(t.at(*be, "n_total") == Owned::ofInt(0));
    CHECK(t.at(*be, "sum_items") == Owned::ofInt(0));
    CHECK(t.at(*be, "n_items") == Owned::ofInt(0));
    for (const char* column : {"min_total", "max_total", "min_items", "max_items"})
        CHECK(t.at(*be, column).isNull());
    CHECK(t.at(*be, "distinct_customer_id") == Owned::ofReal(0.0));

    // A later batch with values fills the NULL minimum and maximum.
    Ev more;
    more.time = kT, more.country = "BE", more.total = -1.25, more.items = 9;
    addAll(a, {more});
    auto out2 = flushOf(a);
    db.apply(out2->batch);
    CHECK(t.at(*be, "min_total") == Owned::ofReal(-1.25));
    CHECK(t.at(*be, "max_items") == Owned::ofInt(9));
    CHECK(t.at(*be, "count") == Owned::ofInt(3));
}

TEST_CASE("the consent filter: only consented events count, all move the watermark", "[aggregator]")
{
    AggregationSpec spec = revenueByCountry();
    spec.consent = {1, 2};
    Aggregator a = make(spec);
    std::vector<Ev> events(6);
    events[0].time = kT + 30 * kSecond, events[0].consent = levels({0, 1, 2}), events[0].total = 1;
    events[1].time = kT + 40 * kSecond, events[1].consent = levels({0, 1}), events[1].total = 10;    // lacks 2
    events[2].time = kT + 5 * kMinute, events[2].consent = 0, events[2].total = 100;               // none
    events[3].time = kT + 70 * kSecond, events[3].consent = levels({1, 2, 5}), events[3].total = 1000;  // late
    events[4].time = kT + 10 * kSecond, events[4].consent = levels({2});                           // neither
    events[5].time = kT + 5 * kMinute, events[5].consent = levels({1, 2}), events[5].total = 7;
    addAll(a, events);

    CHECK(a.counters().events == 6);
    CHECK(a.counters().aggregated == 2);
    CHECK(a.counters().late == 1);
    CHECK(a.counters().filtered == 3);
    CHECK(a.maxEventTimeMs() == kT + 5 * kMinute);

    auto out = flushOf(a);
    MiniDb db;
    db.apply(out->batch);
    const MiniTable& t = db.table("agg_revenue_by_country");
    CHECK(t.rows.size() == 2);
    CHECK(t.at(*rowOf(db, "agg_revenue_by_country", kT, "[\"NL\"]"), "sum_total") == Owned::ofReal(1.0));
    CHECK(t.at(*rowOf(db, "agg_revenue_by_country", kT + 5 * kMinute, "[\"NL\"]"), "sum_total") == Owned::ofReal(7.0));
    CHECK(lateCount(db, "revenue_by_country", kT + kMinute) == 1);
    CHECK(lateCount(db, "revenue_by_country", kT) == 0);  // the filtered event is not late
    CHECK(db.table("late_events").rows.size() == 1);
}

TEST_CASE("out-of-order events within the lateness are accepted, later ones are late", "[aggregator]")
{
    AggregationSpec spec = revenueByCountry();
    spec.allowedLatenessMs = 5 * kSecond;
    Aggregator a = make(spec);
    struct Step {
        int64_t offset;
        bool late;
    };
    const Step steps[] = {
        {30 * kSecond, false},      // the first event is never late
        {63 * kSecond, false},      // watermark now T+58s
        {40 * kSecond, false},      // window T ends at T+60s > T+58s: still open
        {70 * kSecond, false},      // watermark T+65s: window T is final
        {59'999, true},             // window T
        {61 * kSecond, false},      // window T+60s, still open
        {-1, true},                 // window T-60s
        {125 * kSecond, false},     // watermark T+120s: exactly the end of window T+60s
        {119'999, true},            // ends at the watermark: late
        {120 * kSecond, false},     // window T+120s is open
    };
    for (const Step& s : steps) {
        uint64_t lateBefore = a.counters().late;
        Ev e;
        e.time = kT + s.offset;
        addAll(a, {e});
        INFO("offset " << s.offset);
        CHECK(a.counters().late - lateBefore == (s.late ? 1u : 0u));
    }
    CHECK(a.watermarkMs() == kT + 120 * kSecond);

    auto out = flushOf(a);
    CHECK(out->summary.lateEvents == 3);
    CHECK(out->summary.groupRows == 3);
    MiniDb db;
    db.apply(out->batch);
    const MiniTable& t = db.table("agg_revenue_by_country");
    CHECK(t.at(*rowOf(db, "agg_revenue_by_country", kT, "[\"NL\"]"), "count") == Owned::ofInt(2));
    CHECK(t.at(*rowOf(db, "agg_revenue_by_country", kT + kMinute, "[\"NL\"]"), "count") == Owned::ofInt(3));
    CHECK(t.at(*rowOf(db, "agg_revenue_by_country", kT + 2 * kMinute, "[\"NL\"]"), "count") == Owned::ofInt(2));
    CHECK(lateCount(db, "revenue_by_country", kT - kMinute) == 1);
    CHECK(lateCount(db, "revenue_by_country", kT) == 1);
    CHECK(lateCount(db, "revenue_by_country", kT + kMinute) == 1);

    REQUIRE(out->finalizes.size() == 1);
    CHECK(out->finalizes[0].fromMs == windowStart(kMinEventTimeMs, kMinute));
    CHECK(out->finalizes[0].toMs == kT + kMinute);
    CHECK(t.at(*rowOf(db, "agg_revenue_by_country", kT, "[\"NL\"]"), "final") == Owned::ofInt(1));
    CHECK(t.at(*rowOf(db, "agg_revenue_by_country", kT + kMinute, "[\"NL\"]"), "final") == Owned::ofInt(1));
    CHECK(t.at(*rowOf(db, "agg_revenue_by_country", kT + 2 * kMinute, "[\"NL\"]"), "final") == Owned::ofInt(0));

    const UpsertRows* w = out->find("watermarks");
    REQUIRE(w);
    REQUIRE(w->cells.size() == 2);
    CHECK(w->cells[0].text() == "acme/checkout/1.0.0");
    CHECK(w->cells[1].i() == kT + 125 * kSecond);
}

TEST_CASE("finalize ranges are contiguous across flushes and restarts", "[aggregator]")
{
    Aggregator a = make(revenueByCountry());  // 1m windows, no lateness
    auto empty = flushOf(a);
    CHECK(empty->upserts.empty());
    CHECK(empty->finalizes.empty());

    auto batch = [&](int64_t offset) {
        Ev e;
        e.time = kT + offset;
        addAll(a, {e});
        return flushOf(a);
    };
    auto b1 = batch(30 * kSecond);
    REQUIRE(b1->finalizes.size() == 1);
    CHECK(b1->finalizes[0].fromMs == windowStart(kMinEventTimeMs, kMinute));
    CHECK(b1->finalizes[0].toMs == kT - kMinute);

    auto b2 = batch(50 * kSecond);  // the watermark stays in window T
    CHECK(b2->finalizes.empty());
    CHECK_FALSE(b2->summary.finalized);
    CHECK(b2->find("watermarks"));

    auto b3 = batch(3 * kMinute + 10 * kSecond);
    REQUIRE(b3->finalizes.size() == 1);
    CHECK(b3->finalizes[0].fromMs == kT);
    CHECK(b3->finalizes[0].toMs == kT + 2 * kMinute);

    auto b4 = flushOf(a);  // nothing added
    CHECK(b4->upserts.empty());
    CHECK(b4->finalizes.empty());

    auto b5 = batch(10 * kSecond);  // late
    CHECK(b5->finalizes.empty());
    CHECK(b5->summary.lateEvents == 1);
    CHECK(b5->summary.groupRows == 0);
    CHECK_FALSE(b5->find("agg_revenue_by_country"));
    REQUIRE(b5->find("late_events"));

    auto b6 = batch(4 * kMinute);
    REQUIRE(b6->finalizes.size() == 1);
    CHECK(b6->finalizes[0].fromMs == kT + 3 * kMinute);
    CHECK(b6->finalizes[0].toMs == kT + 3 * kMinute);

    // A restart: the watermark comes back from the database; the first flush re-covers
    // everything before it, and earlier windows are late at once.
    Aggregator b = make(revenueByCountry());
    b.setMaxEventTimeMs(kT + 3 * kMinute + 10 * kSecond);
    b.setMaxEventTimeMs(kT);  // never lowers
    CHECK(b.maxEventTimeMs() == kT + 3 * kMinute + 10 * kSecond);
    Ev e;
    e.time = kT + 100 * kSecond;
    addAll(b, {e});
    CHECK(b.counters().late == 1);
    auto r1 = flushOf(b);
    REQUIRE(r1->finalizes.size() == 1);
    CHECK(r1->finalizes[0].fromMs == windowStart(kMinEventTimeMs, kMinute));
    CHECK(r1->finalizes[0].toMs == kT + 2 * kMinute);
}

TEST_CASE("an empty batch emits nothing", "[aggregator]")
{
    Aggregator a = make(everyMetric(kMinute));
    Arena arena;
    WriteBatch wb;
    wb.upserts.resize(1);
    wb.finalizes.resize(2);
    std::vector<UpsertRows>& upserts = wb.upserts;
    std::vector<Finalize>& finalizes = wb.finalizes;
    FlushSummary s = a.flush(arena, wb);
    CHECK(s.groupRows == 0);
    CHECK(s.lateEvents == 0);
    CHECK_FALSE(s.finalized);
    CHECK(upserts.size() == 1);
    CHECK(finalizes.size() == 2);
    CHECK(arena.bytes() == 0);

    a.setMaxEventTimeMs(kT);  // a restored watermark alone is not news
    a.flush(arena, wb);
    CHECK(upserts.size() == 1);
    CHECK(finalizes.size() == 2);
}

TEST_CASE("event times outside the supported range are ignored and counted", "[aggregator]")
{
    Aggregator a = make(everyMetric(kMaxWindowMs, kMaxLatenessMs));
    for (int64_t t : {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                      kMinEventTimeMs - 1, kMaxEventTimeMs + 1}) {
        Ev e;
        e.time = t;
        addAll(a, {e});
    }
    CHECK(a.counters().outOfRange == 4);
    CHECK_FALSE(a.maxEventTimeMs());
    CHECK(flushOf(a)->upserts.empty());

    // The extremes themselves work, without overflow (the sanitizer build checks).
    std::vector<Ev> extremes(3);
    extremes[0].time = kMinEventTimeMs;
    extremes[1].time = kMaxEventTimeMs;
    extremes[2].time = kMinEventTimeMs;  // late now
    addAll(a, extremes);
    CHECK(a.counters().late == 1);
    auto out = flushOf(a);
    CHECK(out->summary.groupRows == 2);
    REQUIRE(out->finalizes.size() == 1);
    CHECK(out->finalizes[0].toMs == windowStart(kMaxEventTimeMs - kMaxLatenessMs, kMaxWindowMs) - kMaxWindowMs);
}

TEST_CASE("integer sums are exact up to the int64 range, then become REAL like SQLite's", "[aggregator]")
{
    Aggregator a = make(everyMetric(kMinute));
    const int64_t big = std::numeric_limits<int64_t>::max();
    const int64_t small = std::numeric_limits<int64_t>::min();
    std::vector<Ev> events(5);
    for (Ev& e : events)
        e.time = kT;
    events[0].items = big, events[1].items = -5, events[2].items = small;  // NL: sum -6
    events[3].country = "BE", events[3].items = big;
    events[4].country = "BE", events[4].items = big;                        // BE: 2^64 - 2
    addAll(a, events);
    auto out = flushOf(a);
    MiniDb db;
    db.apply(out->batch);
    const MiniTable& t = db.table("agg_every_metric");
    const Row* nl = rowOf(db, "agg_every_metric", kT, "[\"NL\"]");
    CHECK(t.at(*nl, "sum_items") == Owned::ofInt(-6));
    CHECK(t.at(*nl, "min_items") == Owned::ofInt(small));
    CHECK(t.at(*nl, "max_items") == Owned::ofInt(big));
    const Row* be = rowOf(db, "agg_every_metric", kT, "[\"BE\"]");
    CHECK(t.at(*be, "sum_items") == Owned::ofReal(2.0 * static_cast<double>(big)));
}

TEST_CASE("distinct values are hashed with the key, by value and type", "[aggregator]")
{
    AggregationSpec spec = revenueByCountry();
    spec.metrics = {metric(MetricKind::kDistinct, "customer_id"), metric(MetricKind::kDistinct, "ratio"),
                    metric(MetricKind::kDistinct, "vip"), metric(MetricKind::kDistinct, "items")};
    auto run = [&](std::span<const uint8_t, kSipKeyBytes> key) {
        Aggregator a = make(spec, key);
        for (int i = 0; i < 4; ++i) {
            std::vector<Value> v(12);
            const std::string customer = "c-" + std::to_string(i % 3);
            v[kCountry] = Value::ofString("NL");
            v[kCustomer] = Value::ofString(customer);
            const Value ratios[] = {Value::ofInt(3), Value::ofReal(3.0), Value::ofReal(-0.0), Value::ofReal(0.0)};
            v[kRatio] = ratios[i];
            v[kVip] = Value::ofBool(i % 2 == 0);
            v[kItems] = Value::ofInt(i == 3 ? 0 : 7);
            a.add(kT, kAllConsent, v);
        }
        auto out = flushOf(a);
        MiniDb db;
        db.apply(out->batch);
        return db;
    };
    MiniDb db = run(kHashKey);
    const MiniTable& t = db.table("agg_revenue_by_country");
    const Row* row = rowOf(db, "agg_revenue_by_country", kT, "[\"NL\"]");
    REQUIRE(row);
    CHECK(std::round(t.at(*row, "distinct_customer_id").d) == 3);
    CHECK(std::round(t.at(*row, "distinct_ratio").d) == 2);  // {3, 0}
    CHECK(std::round(t.at(*row, "distinct_vip").d) == 2);
    CHECK(std::round(t.at(*row, "distinct_items").d) == 2);

    MiniDb same = run(kHashKey);
    auto otherKey = kHashKey;
    otherKey[0] ^= 0x80;
    MiniDb other = run(otherKey);
    const std::string sketch = t.at(*row, "hll_customer_id").text;
    const MiniTable& ts = same.table("agg_revenue_by_country");
    const MiniTable& to = other.table("agg_revenue_by_country");
    CHECK(ts.at(*rowOf(same, "agg_revenue_by_country", kT, "[\"NL\"]"), "hll_customer_id").text == sketch);
    CHECK(to.at(*rowOf(other, "agg_revenue_by_country", kT, "[\"NL\"]"), "hll_customer_id").text != sketch);
}

TEST_CASE("emitted cells live in the arena, not in the aggregator", "[aggregator]")
{
    auto out = std::make_unique<Output>();
    {
        Aggregator a = make(everyMetric(kMinute, kMinute));
        std::vector<Ev> events(3);
        for (int i = 0; i < 3; ++i) {
            events[static_cast<size_t>(i)].time = kT - i * 2 * kMinute;
            events[static_cast<size_t>(i)].country = std::string(40, static_cast<char>('a' + i));
            events[static_cast<size_t>(i)].customer = "customer-" + std::to_string(i);
        }
        addAll(a, events);
        events.clear();  // the event storage goes before the flush
        out->summary = a.flush(out->arena, out->batch);
    }  // and the aggregator after it
    size_t textBytes = 0;
    for (const UpsertRows& u : out->upserts)
        for (const Cell& c : u.cells)
            for (char ch : c.text())
                textBytes += ch != 0 ? 1 : 0;
    CHECK(textBytes > 0);
    MiniDb db;
    db.apply(out->batch);
    CHECK(rowOf(db, "agg_every_metric", kT, "[\"" + std::string(40, 'a') + "\"]"));
    CHECK(lateCount(db, "every_metric", kT - 4 * kMinute) == 1);
}

// The model check: a random stream with out-of-order and late events across many windows goes
// through the aggregator in random batches, through one batch, and through a restart; the
// merged results must be identical, and equal to a reference model computed directly.
TEST_CASE("merging many batches equals one batch, a restart, and the reference model", "[aggregator][model]")
{
    AggregationSpec spec = everyMetric(kMinute, 90 * kSecond);
    spec.name = "model";
    spec.consent = {1};
    const std::string table = spec.tableName();

    std::mt19937_64 rng(20251121);
    auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
    const char* const countries[] = {"NL", "BE", "DE", "FR", "PL"};
    std::vector<Ev> events(20000);
    for (size_t i = 0; i < events.size(); ++i) {
        Ev& e = events[i];
        e.time = kT + static_cast<int64_t>(i) * 150 + (uniform(0, 99) < 3 ? uniform(-10 * kMinute, 0) : uniform(-30 * kSecond, 2 * kSecond));
        e.consent = static_cast<ConsentMask>(uniform(0, 15));
        e.country = uniform(0, 99) < 5 ? std::nullopt : std::optional<std::string>(countries[uniform(0, 4)]);
        int64_t r = uniform(0, 99);
        // Multiples of 0.25 add exactly in any order, so real sums can be compared exactly.
        e.total = r < 5 ? std::nullopt : r < 10 ? std::optional(std::nan("")) : std::optional(0.25 * static_cast<double>(uniform(-400, 4000)));
        e.items = uniform(0, 99) < 10 ? std::nullopt : std::optional(uniform(-1000, 100000));
        e.customer = uniform(0, 99) < 5 ? std::nullopt : std::optional("c-" + std::to_string(uniform(0, 300)));
    }

    // The reference model, straight from the semantics.
    struct Agg {
        int64_t count = 0;
        double sumTotal = 0;
        int64_t nTotal = 0;
        std::optional<double> minTotal, maxTotal;
        int64_t sumItems = 0;
        int64_t nItems = 0;
        std::optional<int64_t> minItems, maxItems;
        std::set<std::string> customers;
    };
    std::map<std::pair<int64_t, std::string>, Agg> model;
    std::map<int64_t, int64_t> modelLate;
    std::optional<int64_t> modelMax;
    for (const Ev& e : events) {
        const bool consented = (e.consent & 2) != 0;
        const int64_t start = windowStart(e.time, kMinute);
        if (consented) {
            if (modelMax && start + kMinute <= *modelMax - 90 * kSecond) {
                ++modelLate[start];
            } else {
                Agg& g = model[{start, e.country ? "[\"" + *e.country + "\"]" : "[null]"}];
                ++g.count;
                if (e.total && !std::isnan(*e.total)) {
                    g.sumTotal += *e.total;
                    ++g.nTotal;
                    g.minTotal = std::min(g.minTotal.value_or(*e.total), *e.total);
                    g.maxTotal = std::max(g.maxTotal.value_or(*e.total), *e.total);
                }
                if (e.items) {
                    g.sumItems += *e.items;
                    ++g.nItems;
                    g.minItems = std::min(g.minItems.value_or(*e.items), *e.items);
                    g.maxItems = std::max(g.maxItems.value_or(*e.items), *e.items);
                }
                if (e.customer)
                    g.customers.insert(*e.customer);
            }
        }
        modelMax = std::max(modelMax.value_or(e.time), e.time);
    }
    REQUIRE(modelLate.size() > 5);
    REQUIRE(model.size() > 100);

    // A: random batch sizes. B: one batch. C: batches of 250 with a restart half-way.
    MiniDb dbA, dbB, dbC;
    {
        Aggregator a = make(spec);
        for (size_t i = 0; i < events.size();) {
            size_t n = std::min<size_t>(static_cast<size_t>(uniform(1, 500)), events.size() - i);
            addAll(a, std::vector<Ev>(events.begin() + static_cast<long>(i), events.begin() + static_cast<long>(i + n)));
            auto out = flushOf(a);
            dbA.apply(out->batch);
            i += n;
        }
        CHECK(a.counters().late == [&] { uint64_t n = 0; for (auto& [s, c] : modelLate) n += static_cast<uint64_t>(c); return n; }());
    }
    {
        Aggregator b = make(spec);
        addAll(b, events);
        auto out = flushOf(b);
        dbB.apply(out->batch);
    }
    {
        const size_t half = events.size() / 2;
        auto first = std::make_unique<Aggregator>(make(spec));
        for (size_t i = 0; i < half; i += 250) {
            addAll(*first, std::vector<Ev>(events.begin() + static_cast<long>(i), events.begin() + static_cast<long>(i + 250)));
            auto out = flushOf(*first);
            dbC.apply(out->batch);
        }
        first.reset();  // the process dies; the database keeps the watermark
        Aggregator second = make(spec);
        const MiniTable& w = dbC.table("watermarks");
        second.setMaxEventTimeMs(w.at(w.rows.begin()->second, "max_event_time").i);
        for (size_t i = half; i < events.size(); i += 250) {
            addAll(second, std::vector<Ev>(events.begin() + static_cast<long>(i), events.begin() + static_cast<long>(i + 250)));
            auto out = flushOf(second);
            dbC.apply(out->batch);
        }
    }

    for (const char* name : {"agg_model", "late_events", "watermarks"}) {
        INFO(name);
        CHECK(dbA.table(name).rows == dbB.table(name).rows);
        CHECK(dbA.table(name).rows == dbC.table(name).rows);
    }

    const MiniTable& t = dbA.table(table);
    CHECK(t.rows.size() == model.size());
    auto optReal = [](std::optional<double> v) { return v ? Owned::ofReal(*v) : Owned::null(); };
    auto optInt = [](std::optional<int64_t> v) { return v ? Owned::ofInt(*v) : Owned::null(); };
    const int64_t finalThrough = windowStart(*modelMax - 90 * kSecond, kMinute) - kMinute;
    int finals = 0;
    for (const auto& [key, g] : model) {
        INFO("window " << key.first << " group " << key.second);
        const Row* row = rowOf(dbA, table, key.first, key.second);
        REQUIRE(row);
        CHECK(t.at(*row, "count") == Owned::ofInt(g.count));
        CHECK(t.at(*row, "sum_total") == Owned::ofReal(g.sumTotal));
        CHECK(t.at(*row, "n_total") == Owned::ofInt(g.nTotal));
        CHECK(t.at(*row, "min_total") == optReal(g.minTotal));
        CHECK(t.at(*row, "max_total") == optReal(g.maxTotal));
        CHECK(t.at(*row, "sum_items") == Owned::ofInt(g.sumItems));
        CHECK(t.at(*row, "n_items") == Owned::ofInt(g.nItems));
        CHECK(t.at(*row, "min_items") == optInt(g.minItems));
        CHECK(t.at(*row, "max_items") == optInt(g.maxItems));
        const double exact = static_cast<double>(g.customers.size());
        CHECK(std::abs(t.at(*row, "distinct_customer_id").d - exact) <= std::max(1.0, 0.025 * exact));
        const bool final = key.first <= finalThrough;
        finals += final;
        CHECK(t.at(*row, "final") == Owned::ofInt(final ? 1 : 0));
    }
    CHECK(finals > 0);
    CHECK(finals < static_cast<int>(model.size()));

    const MiniTable& late = dbA.table("late_events");
    CHECK(late.rows.size() == modelLate.size());
    for (const auto& [start, n] : modelLate)
        CHECK(lateCount(dbA, "model", start) == n);
    const MiniTable& w = dbA.table("watermarks");
    REQUIRE(w.rows.size() == 1);
    CHECK(w.at(w.rows.begin()->second, "max_event_time") == Owned::ofInt(*modelMax));
}

// Issue 14: min_group_size counts people. Many events of few people are few subjects, exactly,
// however the events are cut into batches; past the exact limit the set only says "more".
TEST_CASE("subjects count distinct people exactly across batches, not events", "[aggregator][subjects]")
{
    AggregationSpec spec = revenueByCountry();
    spec.minGroupSize = 5;
    const std::string table = spec.tableName();
    std::mt19937_64 rng(14);
    // NL: 400 events of 4 people; BE: 5 people; DE: 300 people; FR: events without a subject.
    std::vector<Ev> events;
    auto event = [&](const char* country, std::optional<std::string> customer) {
        Ev e;
        e.time = kT + static_cast<int64_t>(events.size()) * 10;
        e.country = country;
        e.customer = std::move(customer);
        e.total = 1.0;
        events.push_back(e);
    };
    for (int i = 0; i < 400; ++i)
        event("NL", "c-" + std::to_string(rng() % 4));
    for (int i = 0; i < 50; ++i)
        event("BE", "c-" + std::to_string(i % 5));
    for (int i = 0; i < 600; ++i)
        event("DE", "d-" + std::to_string(i % 300));
    for (int i = 0; i < 20; ++i)
        event("FR", std::nullopt);
    std::shuffle(events.begin(), events.end(), rng);

    MiniDb db;
    Aggregator a = make(spec);
    for (size_t i = 0; i < events.size();) {
        const size_t n = std::min<size_t>(1 + rng() % 97, events.size() - i);
        addAll(a, std::vector<Ev>(events.begin() + static_cast<long>(i), events.begin() + static_cast<long>(i + n)));
        auto out = flushOf(a);
        db.apply(out->batch);
        i += n;
    }
    const MiniTable& t = db.table(table);
    auto subjects = [&](const char* country) {
        const Row* row = rowOf(db, table, kT, std::string("[\"") + country + "\"]");
        REQUIRE(row);
        auto set = SubjectSet::parse(t.at(*row, "subject_set").text);
        REQUIRE(set);
        CHECK(static_cast<int64_t>(set->count()) == t.at(*row, "subjects").i);
        return t.at(*row, "subjects").i;
    };
    CHECK(subjects("NL") == 4);
    CHECK(subjects("BE") == 5);
    CHECK(subjects("DE") == static_cast<int64_t>(SubjectSet::kExactLimit) + 1);  // more than 256
    CHECK(subjects("FR") == 0);
    CHECK(t.at(*rowOf(db, table, kT, "[\"NL\"]"), "count") == Owned::ofInt(400));

    // Without a data subject field, the key field (sessions) is what is counted.
    ContractSpec noSubject = checkoutContract();
    noSubject.subjectField = "";
    noSubject.subjectFieldIndex = -1;
    auto bySession = Aggregator::create(spec, noSubject, kHashKey);
    REQUIRE(bySession);
    for (int i = 0; i < 30; ++i) {
        Ev e;
        e.time = kT;
        e.customer = "same person";
        e.session = "s-" + std::to_string(i % 6);
        auto fields = e.fields();
        bySession->add(e.time, e.consent, fields);
    }
    auto out = flushOf(*bySession);
    MiniDb sessions;
    sessions.apply(out->batch);
    CHECK(sessions.table(table).at(*rowOf(sessions, table, kT, "[\"NL\"]"), "subjects") == Owned::ofInt(6));
}
