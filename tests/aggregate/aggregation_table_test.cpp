#include <catch2/catch.hpp>

#include <functional>
#include <string>

#include "aggregate/aggregation_table.h"
#include "aggregate/window.h"
#include "fixtures.h"

using namespace sluice;
using namespace sluice::aggregate;
using namespace sluice::aggregate::testing;

namespace {

std::string describe(const std::vector<UpsertColumn>& columns)
{
    static const char* const kOps[] = {"key",          "add",           "min",            "max",
                                       "set",          "hll_merge",     "hll_estimate",   "subjects_merge",
                                       "subjects_count", "keep"};
    std::string out;
    for (const UpsertColumn& c : columns) {
        out += out.empty() ? "" : " ";
        out += c.name + ":" + kOps[static_cast<int>(c.op)];
        if (c.source >= 0)
            out += "@" + std::to_string(c.source);
    }
    return out;
}

}  // namespace

TEST_CASE("the reference aggregation's columns, table and view", "[table]")
{
    auto t = AggregationTable::create(revenueByCountry(), checkoutContract());
    REQUIRE(t);
    CHECK(describe(t->columns()) ==
          "window_start:key group_key:key country:keep count:add sum_total:add n_total:add "
          "distinct_customer_id:hll_estimate@9 subjects:subjects_count@10 final:keep hll_customer_id:hll_merge "
          "subject_set:subjects_merge");
    CHECK(t->tableName() == "agg_revenue_by_country");
    CHECK(t->countColumn() == 3);
    CHECK(t->subjectsColumn() == 7);
    CHECK(t->finalColumn() == 8);
    CHECK(t->subjectSetColumn() == 10);
    CHECK(t->subjectFieldIndex() == kCustomer);
    CHECK(t->subjectField() == "customer_id");
    CHECK_FALSE(t->subjectIsKeyField());
    REQUIRE(t->groups().size() == 1);
    CHECK(t->groups()[0].column == 2);
    CHECK(t->groups()[0].fieldIndex == kCountry);
    REQUIRE(t->distinctFields().size() == 1);
    CHECK(t->distinctFields()[0].sketchColumn == 9);
    CHECK(t->distinctFields()[0].estimateColumn == 6);

    CHECK(t->createTableSql() ==
          "CREATE TABLE IF NOT EXISTS \"agg_revenue_by_country\" (\"window_start\" INTEGER NOT NULL, "
          "\"group_key\" TEXT NOT NULL, \"country\" TEXT, \"count\" INTEGER NOT NULL, "
          "\"sum_total\" REAL NOT NULL, \"n_total\" INTEGER NOT NULL, "
          "\"distinct_customer_id\" REAL NOT NULL, \"subjects\" INTEGER NOT NULL DEFAULT 0, "
          "\"final\" INTEGER NOT NULL DEFAULT 0, \"complete\" INTEGER NOT NULL DEFAULT 0, "
          "\"hll_customer_id\" BLOB NOT NULL, "
          "\"subject_set\" BLOB NOT NULL DEFAULT x'0300', PRIMARY KEY (\"window_start\", \"group_key\"))");

    CHECK(t->createViewSql() ==
          "CREATE VIEW IF NOT EXISTS \"revenue_by_country\" AS SELECT "
          "strftime('%Y-%m-%dT%H:%M:%fZ', \"window_start\" / 1000.0, 'unixepoch') AS \"window_start\", "
          "strftime('%Y-%m-%dT%H:%M:%fZ', (\"window_start\" + 60000) / 1000.0, 'unixepoch') AS \"window_end\", "
          "\"window_start\" AS \"window_start_ms\", \"country\", \"count\", "
          "CASE WHEN \"n_total\" > 0 THEN \"sum_total\" END AS \"sum_total\", "
          "CAST(round(\"distinct_customer_id\") AS INTEGER) AS \"distinct_customer_id\", "
          "\"final\", \"complete\" FROM \"agg_revenue_by_country\"");

    // The layouts before the complete column and before k-anonymity counted people, and how
    // they become this one.
    const auto upgrades = t->upgrades();
    REQUIRE(upgrades.size() == 2);
    CHECK(upgrades[0].fromCreateSql ==
          "CREATE TABLE IF NOT EXISTS \"agg_revenue_by_country\" (\"window_start\" INTEGER NOT NULL, "
          "\"group_key\" TEXT NOT NULL, \"country\" TEXT, \"count\" INTEGER NOT NULL, "
          "\"sum_total\" REAL NOT NULL, \"n_total\" INTEGER NOT NULL, "
          "\"distinct_customer_id\" REAL NOT NULL, \"subjects\" INTEGER NOT NULL DEFAULT 0, "
          "\"final\" INTEGER NOT NULL DEFAULT 0, \"hll_customer_id\" BLOB NOT NULL, "
          "\"subject_set\" BLOB NOT NULL DEFAULT x'0300', PRIMARY KEY (\"window_start\", \"group_key\"))");
    CHECK(upgrades[0].statements ==
          std::vector<std::string>{
              "ALTER TABLE \"agg_revenue_by_country\" ADD COLUMN \"complete\" INTEGER NOT NULL DEFAULT 0"});
    CHECK(upgrades[1].fromCreateSql ==
          "CREATE TABLE IF NOT EXISTS \"agg_revenue_by_country\" (\"window_start\" INTEGER NOT NULL, "
          "\"group_key\" TEXT NOT NULL, \"country\" TEXT, \"count\" INTEGER NOT NULL, "
          "\"sum_total\" REAL NOT NULL, \"n_total\" INTEGER NOT NULL, "
          "\"distinct_customer_id\" REAL NOT NULL, \"final\" INTEGER NOT NULL DEFAULT 0, "
          "\"hll_customer_id\" BLOB NOT NULL, PRIMARY KEY (\"window_start\", \"group_key\"))");
    CHECK(upgrades[1].statements ==
          std::vector<std::string>{
              "ALTER TABLE \"agg_revenue_by_country\" ADD COLUMN \"subjects\" INTEGER NOT NULL DEFAULT 0",
              "ALTER TABLE \"agg_revenue_by_country\" ADD COLUMN \"subject_set\" BLOB NOT NULL DEFAULT x'0300'",
              "ALTER TABLE \"agg_revenue_by_country\" ADD COLUMN \"complete\" INTEGER NOT NULL DEFAULT 0"});
    const TableDef def = t->tableDef();
    CHECK(def.name == "agg_revenue_by_country");
    CHECK(def.createSql == t->createTableSql());
    CHECK(def.viewName == "revenue_by_country");
    CHECK(def.viewSql == t->createViewSql());
    CHECK(def.upgrades.size() == 2);
}

TEST_CASE("k-anonymity counts the contract's data subjects, or its key field when it names none", "[table]")
{
    ContractSpec contract = checkoutContract();
    contract.subjectField = "";
    contract.subjectFieldIndex = -1;
    auto t = AggregationTable::create(revenueByCountry(), contract);
    REQUIRE(t);
    CHECK(t->subjectFieldIndex() == kSession);
    CHECK(t->subjectField() == "session_id");
    CHECK(t->subjectIsKeyField());
    CHECK(t->minGroupSize() == 1);

    AggregationSpec spec = revenueByCountry();
    spec.minGroupSize = 256;
    auto k = AggregationTable::create(spec, contract);
    REQUIRE(k);
    CHECK_THAT(k->createViewSql(), Catch::EndsWith("WHERE \"subjects\" >= 256"));
    CHECK(AggregationSpec{}.minGroupSize == 5);
}

TEST_CASE("every metric: shared sum and n columns, typed min and max, k-anonymity", "[table]")
{
    AggregationSpec spec = everyMetric(3'600'000);
    spec.groupBy = {"country", "device", "vip", "items", "ratio"};
    spec.minGroupSize = 5;
    auto t = AggregationTable::create(spec, checkoutContract());
    REQUIRE(t);
    CHECK(describe(t->columns()) ==
          "window_start:key group_key:key country:keep device:keep vip:keep items:keep ratio:keep count:add "
          "sum_total:add n_total:add min_total:min max_total:max sum_items:add n_items:add "
          "min_items:min max_items:max distinct_customer_id:hll_estimate@19 subjects:subjects_count@20 final:keep "
          "hll_customer_id:hll_merge subject_set:subjects_merge");
    REQUIRE(t->numericFields().size() == 2);
    CHECK(t->numericFields()[0].field == "total");
    CHECK_FALSE(t->numericFields()[0].integer);
    CHECK(t->numericFields()[1].field == "items");
    CHECK(t->numericFields()[1].integer);

    const std::string table = t->createTableSql();
    CHECK_THAT(table, Catch::Contains("\"vip\" INTEGER, \"items\" INTEGER, \"ratio\" REAL,"));
    CHECK_THAT(table, Catch::Contains("\"sum_total\" REAL NOT NULL"));
    CHECK_THAT(table, Catch::Contains("\"min_total\" REAL, \"max_total\" REAL"));
    CHECK_THAT(table, Catch::Contains("\"sum_items\" INTEGER NOT NULL"));
    CHECK_THAT(table, Catch::Contains("\"min_items\" INTEGER, \"max_items\" INTEGER"));
    CHECK_THAT(table, Catch::EndsWith("PRIMARY KEY (\"window_start\", \"group_key\"))"));

    const std::string view = t->createViewSql();
    CHECK_THAT(view, Catch::Contains("(\"window_start\" + 3600000) / 1000.0"));
    CHECK_THAT(view, Catch::Contains("CAST(\"sum_total\" AS REAL) / NULLIF(\"n_total\", 0) AS \"avg_total\""));
    CHECK_THAT(view, Catch::Contains("CAST(\"sum_items\" AS REAL) / NULLIF(\"n_items\", 0) AS \"avg_items\""));
    CHECK_THAT(view, Catch::Contains("CASE WHEN \"n_items\" > 0 THEN \"sum_items\" END AS \"sum_items\""));
    CHECK_THAT(view, Catch::Contains(", \"min_items\", \"max_items\", "));
    CHECK_THAT(view, Catch::EndsWith("FROM \"agg_every_metric\" WHERE \"subjects\" >= 5"));
}

TEST_CASE("tables without sketches are WITHOUT ROWID; identifiers are quoted", "[table]")
{
    AggregationSpec spec = revenueByCountry();
    spec.name = "odd\"name";
    spec.metrics = {metric(MetricKind::kCount), metric(MetricKind::kMax, "items")};
    auto t = AggregationTable::create(spec, checkoutContract());
    REQUIRE(t);
    CHECK_THAT(t->createTableSql(), Catch::StartsWith("CREATE TABLE IF NOT EXISTS \"agg_odd\"\"name\" ("));
    CHECK_THAT(t->createTableSql(), Catch::EndsWith(")) WITHOUT ROWID"));
    CHECK_THAT(t->createViewSql(), Catch::StartsWith("CREATE VIEW IF NOT EXISTS \"odd\"\"name\" AS SELECT"));
    CHECK(quoteIdent("a\"b\"") == "\"a\"\"b\"\"\"");
}

TEST_CASE("shared tables", "[table]")
{
    CHECK(createLateEventsTableSql() ==
          "CREATE TABLE IF NOT EXISTS \"late_events\" (\"aggregation\" TEXT NOT NULL, "
          "\"window_start\" INTEGER NOT NULL, \"events\" INTEGER NOT NULL, "
          "PRIMARY KEY (\"aggregation\", \"window_start\")) WITHOUT ROWID");
    CHECK(createWatermarksTableSql() ==
          "CREATE TABLE IF NOT EXISTS \"watermarks\" (\"contract\" TEXT NOT NULL PRIMARY KEY, "
          "\"max_event_time\" INTEGER NOT NULL) WITHOUT ROWID");
    CHECK(describe(lateEventsColumns()) == "aggregation:key window_start:key events:add");
    CHECK(describe(watermarksColumns()) == "contract:key max_event_time:max");
}

TEST_CASE("checkAggregation accepts what the spec allows", "[table][check]")
{
    ContractSpec contract = checkoutContract();
    CHECK(checkAggregation(revenueByCountry(), contract));
    CHECK(checkAggregation(everyMetric(1000, 5000), contract));

    AggregationSpec a = revenueByCountry();
    a.groupBy = {};  // one group per window
    a.metrics = {metric(MetricKind::kDistinct, "email"), metric(MetricKind::kDistinct, "vip"),
                 metric(MetricKind::kDistinct, "items"), metric(MetricKind::kDistinct, "ratio")};
    a.consent = {0, 63};
    a.allowedLatenessMs = 0;
    a.minGroupSize = 10;
    CHECK(checkAggregation(a, contract));

    a.contract = "";  // not named: the caller matched it
    a.groupBy = {"vip", "items", "ratio", "device"};
    CHECK(checkAggregation(a, contract));
}

TEST_CASE("checkAggregation rejects each invalid configuration with a specific message", "[table][check]")
{
    ContractSpec contract = checkoutContract();
    ContractSpec oddNames = contract;
    for (const char* name :
         {"count", "final", "n_total", "avg_total", "window_end", "window_start_ms", "group_key", "subjects"}) {
        FieldSpec f;
        f.name = name;
        oddNames.fields.push_back(f);
    }

    struct Case {
        const char* what;
        std::function<void(AggregationSpec&)> change;
        const char* message;
        const ContractSpec* against = nullptr;
    };
    const Case cases[] = {
        {"no name", [](auto& a) { a.name = ""; }, "has no name"},
        {"other contract", [](auto& a) { a.contract = "acme/other/1.0.0"; },
         "is defined on contract \"acme/other/1.0.0\", not \"acme/checkout/1.0.0\""},
        {"zero window", [](auto& a) { a.windowMs = 0; }, "window must be longer than 0 ms"},
        {"negative window", [](auto& a) { a.windowMs = -60000; }, "window must be longer than 0 ms"},
        {"huge window", [](auto& a) { a.windowMs = kMaxWindowMs + 1; }, "window longer than"},
        {"negative lateness", [](auto& a) { a.allowedLatenessMs = -1; }, "allowed_lateness must not be negative"},
        {"huge lateness", [](auto& a) { a.allowedLatenessMs = kMaxLatenessMs + 1; }, "allowed_lateness longer than"},
        {"min group size 0", [](auto& a) { a.minGroupSize = 0; }, "min_group_size must be from 1 to 256"},
        {"min group size 257", [](auto& a) { a.minGroupSize = 257; },
         "min_group_size must be from 1 to 256 (distinct subjects are counted exactly up to 256)"},
        {"consent -1", [](auto& a) { a.consent = {1, -1}; }, "consent level -1 outside 0..63"},
        {"consent 64", [](auto& a) { a.consent = {64}; }, "consent level 64 outside 0..63"},
        {"no metrics", [](auto& a) { a.metrics.clear(); }, "has no metrics"},
        {"unknown group field", [](auto& a) { a.groupBy = {"region"}; },
         "group_by field \"region\" is not a field of acme/checkout/1.0.0"},
        {"PII group field", [](auto& a) { a.groupBy = {"country", "email"}; },
         "group_by field \"email\" is PII (level 2); PII fields cannot be grouped by"},
        {"array group field", [](auto& a) { a.groupBy = {"tags"}; }, "group_by field \"tags\" is an array"},
        {"group field twice", [](auto& a) { a.groupBy = {"country", "country"}; }, "group_by names \"country\" twice"},
        {"count with a field", [](auto& a) { a.metrics = {metric(MetricKind::kCount, "total")}; },
         "count takes no field (got \"total\")"},
        {"sum without a field", [](auto& a) { a.metrics = {metric(MetricKind::kSum)}; }, "sum needs a field"},
        {"distinct without a field", [](auto& a) { a.metrics = {metric(MetricKind::kDistinct)}; },
         "distinct needs a field"},
        {"unknown metric field", [](auto& a) { a.metrics = {metric(MetricKind::kMax, "price")}; },
         "max(price): \"price\" is not a field of acme/checkout/1.0.0"},
        {"sum of a string", [](auto& a) { a.metrics = {metric(MetricKind::kSum, "device")}; },
         "sum(device): \"device\" is a string; sum needs an integer or number field"},
        {"avg of a boolean", [](auto& a) { a.metrics = {metric(MetricKind::kAvg, "vip")}; },
         "avg(vip): \"vip\" is a boolean; avg needs an integer or number field"},
        {"min of PII", [](auto& a) { a.metrics = {metric(MetricKind::kMin, "email")}; },
         "min(email): \"email\" is a string; min needs an integer or number field"},
        {"max of an array", [](auto& a) { a.metrics = {metric(MetricKind::kMax, "scores")}; },
         "max(scores): \"scores\" is an array"},
        {"distinct of an array", [](auto& a) { a.metrics = {metric(MetricKind::kDistinct, "tags")}; },
         "distinct(tags): \"tags\" is an array"},
        {"metric twice", [](auto& a) { a.metrics.push_back(metric(MetricKind::kSum, "total")); },
         "the metric sum(total) is listed twice"},
        {"count twice", [](auto& a) { a.metrics.push_back(metric(MetricKind::kCount)); },
         "the metric count is listed twice"},
        {"group field named count", [](auto& a) { a.groupBy = {"count"}; },
         "group_by field \"count\" has the name of a column the aggregation needs", &oddNames},
        {"group field named final", [](auto& a) { a.groupBy = {"final"}; },
         "group_by field \"final\" has the name of a column the aggregation needs", &oddNames},
        {"group field named subjects", [](auto& a) { a.groupBy = {"subjects"}; },
         "group_by field \"subjects\" has the name of a column the aggregation needs", &oddNames},
        {"group field named group_key", [](auto& a) { a.groupBy = {"group_key"}; },
         "group_by field \"group_key\" has the name of a column the aggregation needs", &oddNames},
        {"group field named like a helper column", [](auto& a) { a.groupBy = {"n_total"}; },
         "group_by field \"n_total\" has the name of a column the aggregation needs", &oddNames},
        {"group field named like a view metric", [](auto& a) {
             a.groupBy = {"avg_total"};
             a.metrics.push_back(metric(MetricKind::kAvg, "total"));
         },
         "group_by field \"avg_total\" has the name of a metric column of the view", &oddNames},
        {"group field named window_end", [](auto& a) { a.groupBy = {"window_end"}; },
         "group_by field \"window_end\" has the name of a column of the view", &oddNames},
        {"group field named window_start_ms", [](auto& a) { a.groupBy = {"window_start_ms"}; },
         "group_by field \"window_start_ms\" has the name of a column of the view", &oddNames},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        AggregationSpec a = revenueByCountry();
        a.path = "pipelines/checkout.json";
        c.change(a);
        Status s = checkAggregation(a, c.against ? *c.against : contract);
        REQUIRE_FALSE(s);
        CHECK(s.code() == StatusCode::kInvalidArgument);
        CHECK_THAT(s.message(), Catch::StartsWith("pipelines/checkout.json: aggregation \"" + a.name + "\": "));
        CHECK_THAT(s.message(), Catch::Contains(c.message));
        CHECK_FALSE(AggregationTable::create(a, c.against ? *c.against : contract));
    }
}

TEST_CASE("sliding windows: the tumbling layout, windows ending size after their start", "[table][sliding]")
{
    AggregationSpec spec = revenueByCountry();
    spec.window = WindowKind::kSliding;
    spec.windowMs = 3'600'000;
    spec.slideMs = 300'000;
    auto t = AggregationTable::create(spec, checkoutContract());
    REQUIRE(t);
    CHECK(t->window() == WindowKind::kSliding);
    CHECK(t->windowMs() == 3'600'000);
    CHECK(t->slideMs() == 300'000);
    CHECK(t->windowEndColumn() == -1);
    auto tumbling = AggregationTable::create(revenueByCountry(), checkoutContract());
    REQUIRE(tumbling);
    CHECK(tumbling->slideMs() == 60'000);
    CHECK(describe(t->columns()) == describe(tumbling->columns()));
    CHECK(t->createTableSql() == tumbling->createTableSql());
    CHECK_THAT(t->createViewSql(), Catch::Contains("(\"window_start\" + 3600000) / 1000.0"));
    CHECK(t->createIndexSql().empty());
    // There were no sliding tables before subject sets: only the complete column is added.
    CHECK(t->upgrades().size() == 1);
}

TEST_CASE("session windows: window_end stored, rows written whole, open rows indexed", "[table][session]")
{
    AggregationSpec spec = revenueByCountry();
    spec.name = "visits";
    spec.window = WindowKind::kSession;
    spec.gapMs = 1'800'000;
    spec.groupBy = {"country", "customer_id"};
    spec.minGroupSize = 2;
    auto t = AggregationTable::create(spec, checkoutContract());
    REQUIRE(t);
    CHECK(t->window() == WindowKind::kSession);
    CHECK(t->gapMs() == 1'800'000);
    CHECK(describe(t->columns()) ==
          "window_start:key group_key:key window_end:set country:set customer_id:set count:set sum_total:set "
          "n_total:set distinct_customer_id:set subjects:set final:set hll_customer_id:set subject_set:set");
    CHECK(t->windowEndColumn() == 2);
    REQUIRE(t->groups().size() == 2);
    CHECK_FALSE(t->groups()[0].pseudonym);
    CHECK(t->groups()[1].pseudonym);  // customer_id is PII: a keyed pseudonym is stored
    CHECK_THAT(t->createTableSql(),
               Catch::StartsWith("CREATE TABLE IF NOT EXISTS \"agg_visits\" (\"window_start\" INTEGER NOT NULL, "
                                 "\"group_key\" TEXT NOT NULL, \"window_end\" INTEGER NOT NULL, \"country\" TEXT, "
                                 "\"customer_id\" TEXT, "));
    CHECK(t->createIndexSql() == std::vector<std::string>{"CREATE INDEX IF NOT EXISTS \"agg_visits_open\" ON "
                                                          "\"agg_visits\" (\"window_start\") WHERE \"final\" = 0"});
    CHECK(t->tableDef().indexSql == t->createIndexSql());
    const std::string view = t->createViewSql();
    CHECK_THAT(view, Catch::Contains("strftime('%Y-%m-%dT%H:%M:%fZ', (\"window_end\") / 1000.0, 'unixepoch') AS "
                                     "\"window_end\", \"window_start\" AS \"window_start_ms\", \"window_end\" AS "
                                     "\"window_end_ms\", \"country\", \"customer_id\", \"count\""));
    CHECK_THAT(view, Catch::EndsWith("WHERE \"subjects\" >= 2"));
    CHECK(t->upgrades().size() == 1);
}

TEST_CASE("window shapes that cannot work are refused with the field named", "[table][check]")
{
    ContractSpec contract = checkoutContract();
    struct Case {
        const char* what;
        std::function<void(AggregationSpec&)> change;
        const char* message;
    };
    auto sliding = [](AggregationSpec& a, int64_t size, int64_t slide) {
        a.window = WindowKind::kSliding;
        a.windowMs = size;
        a.slideMs = slide;
    };
    auto session = [](AggregationSpec& a, int64_t gap) {
        a.window = WindowKind::kSession;
        a.gapMs = gap;
        a.groupBy = {"session_id"};
    };
    const Case cases[] = {
        {"slide not dividing size", [&](auto& a) { sliding(a, 3'600'000, 420'000); },
         "window.slide (420000 ms) does not divide window.size (3600000 ms)"},
        {"slide longer than size", [&](auto& a) { sliding(a, 60'000, 120'000); },
         "window.slide (120000 ms) is longer than window.size (60000 ms)"},
        {"zero slide", [&](auto& a) { sliding(a, 60'000, 0); }, "window.slide must be longer than 0 ms"},
        {"zero size", [&](auto& a) { sliding(a, 0, 0); }, "window.size must be longer than 0 ms"},
        {"too many windows per event", [&](auto& a) { sliding(a, 86'400'000, 1000); },
         "window.size / window.slide is 86400 windows per event; at most 4096"},
        {"zero gap", [&](auto& a) { session(a, 0); }, "window.gap must be longer than 0 ms"},
        {"huge gap", [&](auto& a) { session(a, kMaxWindowMs + 1); }, "window.gap longer than"},
        {"session without a bounding group",
         [&](auto& a) {
             session(a, 60'000);
             a.groupBy = {"country"};
         },
         "a session window needs group_by to include the contract's key_field \"session_id\" or "
         "data_subject_field \"customer_id\", which bound a session"},
        {"session without any group",
         [&](auto& a) {
             session(a, 60'000);
             a.groupBy.clear();
         },
         "a session window needs group_by to include"},
        {"PII group in a sliding window",
         [&](auto& a) {
             sliding(a, 60'000, 30'000);
             a.groupBy = {"session_id"};
         },
         "group_by field \"session_id\" is PII (level 0); PII fields cannot be grouped by"},
        {"window_end_ms as a group field of a session",
         [&](auto& a) {
             session(a, 60'000);
             a.groupBy = {"session_id", "window_end_ms"};
         },
         "group_by field \"window_end_ms\""},
        {"metric on an unknown field", [&](auto& a) {
             session(a, 60'000);
             a.metrics = {metric(MetricKind::kSum, "price")};
         },
         "sum(price): \"price\" is not a field of acme/checkout/1.0.0"},
        {"sum of a PII field", [&](auto& a) {
             session(a, 60'000);
             a.metrics = {metric(MetricKind::kSum, "email")};
         },
         "sum(email): \"email\" is a string; sum needs an integer or number field"},
    };
    ContractSpec odd = contract;
    FieldSpec extra;
    extra.name = "window_end_ms";
    odd.fields.push_back(extra);
    for (const Case& c : cases) {
        INFO(c.what);
        AggregationSpec a = revenueByCountry();
        a.path = "pipelines/checkout.json";
        c.change(a);
        Status s = checkAggregation(a, odd);
        REQUIRE_FALSE(s);
        CHECK_THAT(s.message(), Catch::StartsWith("pipelines/checkout.json: aggregation \"revenue_by_country\": "));
        CHECK_THAT(s.message(), Catch::Contains(c.message));
    }
    // Without a data subject field, the key field alone is named.
    ContractSpec noSubject = contract;
    noSubject.subjectField.clear();
    noSubject.subjectFieldIndex = -1;
    AggregationSpec a = revenueByCountry();
    a.window = WindowKind::kSession;
    a.gapMs = 1000;
    Status s = checkAggregation(a, noSubject);
    REQUIRE_FALSE(s);
    CHECK_THAT(s.message(), Catch::Contains("include the contract's key_field \"session_id\", which bound"));
    a.groupBy = {"session_id"};
    CHECK(checkAggregation(a, noSubject));
}
