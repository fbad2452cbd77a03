// Contract and pipeline files: what they turn into, and every error path of
// pipeline_loader.cpp with a message of the form "<file>: <json path>: <problem>".
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "config/builtin.h"
#include "config/config.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::config;
using sluice::testing::TempDir;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const char* kShop = R"J({
  "ref": "t/shop/1.0.0",
  "key_field": "sid",
  "data_subject_field": "cid",
  "retention_days": 7,
  "description": "a test contract",
  "fields": {
    "sid":     {"type": "string", "required": true, "pii": 0},
    "cid":     {"type": "string", "pii": 1, "max_length": 64},
    "email":   {"type": "string", "pii": 2, "pattern": "^[^@]+@[^@]+$"},
    "tags":    {"type": "array", "items": "string", "pii": 1},
    "country": {"type": "string", "required": true, "pattern": "^[A-Z]{2}$", "description": "ISO code"},
    "total":   {"type": "number", "required": true},
    "items":   {"type": "integer"},
    "ok":      {"type": "boolean", "required": false},
    "counts":  {"type": "array", "items": {"type": "integer"}}
  }})J";

// A contract file with one field definition replaced (or added).
std::string shopWith(const std::string& name, const std::string& definition)
{
    return std::string(R"J({"ref": "t/shop/1.0.0", "key_field": "sid", "fields": {
      "sid": {"type": "string", "required": true}, ")J") +
           name + "\": " + definition + "}}";
}

struct Dirs {
    TempDir dir;
    PipelineConfig config;

    Dirs()
    {
        config.contractsDir = dir.file("contracts");
        config.pipelinesDir = dir.file("pipelines");
        std::filesystem::create_directories(config.contractsDir);
        std::filesystem::create_directories(config.pipelinesDir);
    }
    std::string contract(const std::string& name, const std::string& text) { return dir.write("contracts/" + name, text); }
    std::string pipeline(const std::string& name, const std::string& text) { return dir.write("pipelines/" + name, text); }

    Result<PipelinePtr> load() { return loadPipeline(config); }
    std::string error()
    {
        auto p = load();
        REQUIRE_FALSE(p.isOk());
        CHECK(p.status().code() == StatusCode::kInvalidArgument);
        return p.status().message();
    }
};

}  // namespace

TEST_CASE("a contract file becomes a ContractSpec", "[config][contracts]")
{
    Dirs d;
    const std::string path = d.contract("shop.json", kShop);
    d.contract("README.txt", "not a contract, ignored");
    auto p = d.load();
    INFO((p.isOk() ? "" : p.status().message()));
    REQUIRE(p.isOk());
    REQUIRE((*p)->contracts.size() == 1);
    const ContractSpec& c = (*p)->contracts[0];
    CHECK(c.ref == "t/shop/1.0.0");
    CHECK(c.path == path);
    CHECK(c.keyField == "sid");
    CHECK(c.keyFieldIndex == 0);
    CHECK(c.subjectField == "cid");
    CHECK(c.subjectFieldIndex == 1);
    CHECK(c.retentionDays == 7);
    CHECK_THAT(c.definition, StartsWith("{\"ref\":\"t/shop/1.0.0\""));
    REQUIRE(c.fields.size() == 9);
    // Fields keep the file's order.
    std::vector<std::string> names;
    for (const FieldSpec& f : c.fields)
        names.push_back(f.name);
    CHECK(names == std::vector<std::string>{"sid", "cid", "email", "tags", "country", "total", "items", "ok", "counts"});
    CHECK(c.fields[0].type == FieldType::kString);
    CHECK(c.fields[0].required);
    CHECK(c.fields[0].pii == 0);
    CHECK(c.fields[1].maxLength == 64);
    CHECK(c.fields[2].pattern == "^[^@]+@[^@]+$");
    CHECK(c.fields[3].array);
    CHECK(c.fields[3].type == FieldType::kString);
    CHECK(c.fields[3].pii == 1);
    CHECK(c.fields[5].type == FieldType::kNumber);
    CHECK(c.fields[6].type == FieldType::kInteger);
    CHECK_FALSE(c.fields[6].required);
    CHECK(c.fields[6].pii == -1);
    CHECK(c.fields[7].type == FieldType::kBoolean);
    CHECK(c.fields[8].array);
    CHECK(c.fields[8].type == FieldType::kInteger);
    CHECK((*p)->outputs.empty());
    CHECK((*p)->aggregations.empty());
}

TEST_CASE("contract errors name the file and the JSON path", "[config][contracts][errors]")
{
    struct Case {
        const char* name;
        std::string text;
        std::string expected;  // after "<file>: "
    };
    const std::vector<Case> cases = {
        {"not JSON", "{\"ref\": ", "not valid JSON: "},
        {"not JSON, trailing", std::string(kShop) + "}", "not valid JSON: "},
        {"not an object", "[1, 2]", "a contract must be a JSON object"},
        {"unknown top-level key", R"J({"ref": "t/shop/1.0.0", "colour": 1})J", "colour: unknown key"},
        {"ref missing", R"J({"fields": {}})J", "ref: is required and must be a string like handle/name/1.0.0"},
        {"ref not a string", R"J({"ref": 1})J", "ref: is required"},
        {"ref malformed", R"J({"ref": "shop-1.0"})J", "ref: 'shop-1.0' is not of the form handle/name/major.minor.patch"},
        {"ref without patch", R"J({"ref": "t/shop/1.0"})J", "ref: 't/shop/1.0' is not of the form"},
        {"fields missing", R"J({"ref": "t/shop/1.0.0", "key_field": "sid"})J", "fields: is required and must be a non-empty object"},
        {"fields empty", R"J({"ref": "t/shop/1.0.0", "fields": {}})J", "fields: is required and must be a non-empty object"},
        {"field not an object", shopWith("x", "\"string\""), "fields.x: must be an object"},
        {"unknown field key", shopWith("x", R"J({"type": "string", "colour": 1})J"), "fields.x.colour: unknown key"},
        {"reserved name meta", shopWith("meta", R"J({"type": "string"})J"), "fields.meta: 'meta' is reserved for event metadata"},
        {"reserved name event_id", shopWith("event_id", R"J({"type": "string"})J"),
         "fields.event_id: 'event_id' is reserved (it names a metadata column of the events table)"},
        {"reserved name batch_id", shopWith("batch_id", R"J({"type": "integer"})J"), "fields.batch_id: 'batch_id' is reserved"},
        {"reserved name seq", shopWith("seq", R"J({"type": "integer"})J"), "fields.seq: 'seq' is reserved"},
        {"reserved name consent", shopWith("consent", R"J({"type": "string"})J"), "fields.consent: 'consent' is reserved"},
        {"reserved name key_link", shopWith("key_link", R"J({"type": "string"})J"), "fields.key_link: 'key_link' is reserved"},
        {"empty field name", shopWith("", R"J({"type": "string"})J"), "fields.: field names must be 1 to 128 bytes"},
        {"type missing", shopWith("x", R"J({"required": true})J"), "fields.x.type: is required and must be a string"},
        {"unknown type", shopWith("x", R"J({"type": "text"})J"),
         "fields.x.type: unknown type 'text' (string, integer, number, boolean or array)"},
        {"array without items", shopWith("x", R"J({"type": "array"})J"), "fields.x.items: is required for an array"},
        {"array of unknown", shopWith("x", R"J({"type": "array", "items": "float"})J"), "fields.x.items: unknown type 'float'"},
        {"array of arrays", shopWith("x", R"J({"type": "array", "items": "array"})J"),
         "fields.x.items: arrays of arrays are not supported"},
        {"items malformed", shopWith("x", R"J({"type": "array", "items": {"type": "string", "pattern": "a"}})J"),
         "fields.x.items: must be a type name or {\"type\": name}"},
        {"items on a scalar", shopWith("x", R"J({"type": "string", "items": "string"})J"), "fields.x.items: only arrays have items"},
        {"required not boolean", shopWith("x", R"J({"type": "string", "required": "yes"})J"),
         "fields.x.required: must be true or false"},
        {"pii negative", shopWith("x", R"J({"type": "string", "pii": -1})J"), "fields.x.pii: must be a purpose level from 0 to 63"},
        {"pii above 63", shopWith("x", R"J({"type": "string", "pii": 64})J"), "fields.x.pii: must be a purpose level from 0 to 63"},
        {"pii not integer", shopWith("x", R"J({"type": "string", "pii": 1.5})J"), "fields.x.pii: must be a purpose level"},
        {"pii on an integer", shopWith("x", R"J({"type": "integer", "pii": 1})J"),
         "fields.x.pii: a PII field must be a string or an array of strings"},
        {"pii on a boolean", shopWith("x", R"J({"type": "boolean", "pii": 0})J"), "fields.x.pii: a PII field must be a string"},
        {"pii on an array of numbers", shopWith("x", R"J({"type": "array", "items": "number", "pii": 2})J"),
         "fields.x.pii: a PII field must be a string or an array of strings"},
        {"pattern not a string", shopWith("x", R"J({"type": "string", "pattern": 5})J"), "fields.x.pattern: must be a string"},
        {"pattern on an integer", shopWith("x", R"J({"type": "integer", "pattern": "^1"})J"),
         "fields.x.pattern: only strings can have a pattern"},
        {"invalid regex", shopWith("email", R"J({"type": "string", "pattern": "^(a"})J"),
         "fields.email.pattern: invalid regex at offset 3: missing closing parenthesis"},
        {"invalid regex class", shopWith("email", R"J({"type": "string", "pattern": "x[a-"})J"),
         "fields.email.pattern: invalid regex at offset 4: "},
        {"max_length zero", shopWith("x", R"J({"type": "string", "max_length": 0})J"),
         "fields.x.max_length: must be a positive integer (bytes)"},
        {"max_length on an integer", shopWith("x", R"J({"type": "integer", "max_length": 4})J"),
         "fields.x.max_length: only strings have a length"},
        {"key_field missing", R"J({"ref": "t/shop/1.0.0", "fields": {"a": {"type": "string", "required": true}}})J",
         "key_field: is required and must name a field"},
        {"key_field unknown", R"J({"ref": "t/shop/1.0.0", "key_field": "b", "fields": {"a": {"type": "string"}}})J",
         "key_field: 'b' is not a field of the contract"},
        {"key_field optional", R"J({"ref": "t/shop/1.0.0", "key_field": "a", "fields": {"a": {"type": "string"}}})J",
         "key_field: 'a' must be a required string field (every event needs a key)"},
        {"key_field an integer", R"J({"ref": "t/shop/1.0.0", "key_field": "a", "fields": {"a": {"type": "integer", "required": true}}})J",
         "key_field: 'a' must be a required string field"},
        {"key_field an array",
         R"J({"ref": "t/shop/1.0.0", "key_field": "a", "fields": {"a": {"type": "array", "items": "string", "required": true}}})J",
         "key_field: 'a' must be a required string field"},
        {"data_subject_field unknown",
         R"J({"ref": "t/shop/1.0.0", "key_field": "a", "data_subject_field": "z", "fields": {"a": {"type": "string", "required": true}}})J",
         "data_subject_field: 'z' is not a field of the contract"},
        {"data_subject_field an integer",
         R"J({"ref": "t/shop/1.0.0", "key_field": "a", "data_subject_field": "n", "fields": {"a": {"type": "string", "required": true}, "n": {"type": "integer"}}})J",
         "data_subject_field: 'n' must be a string field"},
        {"data_subject_field not a name",
         R"J({"ref": "t/shop/1.0.0", "key_field": "a", "data_subject_field": 1, "fields": {"a": {"type": "string", "required": true}}})J",
         "data_subject_field: must name a field"},
        {"retention negative",
         R"J({"ref": "t/shop/1.0.0", "key_field": "a", "retention_days": -1, "fields": {"a": {"type": "string", "required": true}}})J",
         "retention_days: must be an integer from 0 (keep) to 36500"},
        {"retention a string",
         R"J({"ref": "t/shop/1.0.0", "key_field": "a", "retention_days": "30", "fields": {"a": {"type": "string", "required": true}}})J",
         "retention_days: must be an integer"},
    };
    for (const Case& c : cases) {
        Dirs d;
        const std::string path = d.contract("c.json", c.text);
        INFO("case: " << c.name << "\n" << c.text);
        CHECK_THAT(d.error(), StartsWith(path + ": " + c.expected));
    }
}

TEST_CASE("contract set errors: duplicates, SQL name clashes, empty or missing directory", "[config][contracts][errors]")
{
    {
        Dirs d;
        const std::string a = d.contract("a.json", kShop);
        const std::string b = d.contract("b.json", kShop);
        CHECK(d.error() == b + ": ref: contract t/shop/1.0.0 is already defined in " + a);
    }
    {
        // Refs that differ only in case map to the same table and view names.
        Dirs d;
        d.contract("a.json", R"J({"ref": "t/shop/1.0.0", "key_field": "a", "fields": {"a": {"type": "string", "required": true}}})J");
        const std::string b =
            d.contract("b.json", R"J({"ref": "T/Shop/1.0.0", "key_field": "a", "fields": {"a": {"type": "string", "required": true}}})J");
        CHECK_THAT(d.error(), StartsWith(b + ": ref: contract refs 'T/Shop/1.0.0' and another map to the same SQL name t_shop_1_0_0"));
    }
    {
        Dirs d;
        d.contract("notes.txt", kShop);
        CHECK(d.error() == "no contracts: " + d.config.contractsDir + " holds no *.json files");
    }
    {
        Dirs d;
        d.config.contractsDir = d.dir.file("nope");
        CHECK(d.error() == "contracts directory " + d.dir.file("nope") + " does not exist or is not a directory");
    }
    {
        Dirs d;
        d.contract("shop.json", kShop);
        d.config.pipelinesDir = d.dir.file("contracts/shop.json");
        CHECK_THAT(d.error(), StartsWith("pipelines directory "));
    }
}

TEST_CASE("contracts are read in file-name order", "[config][contracts]")
{
    Dirs d;
    d.contract("b.json", R"J({"ref": "t/b/1.0.0", "key_field": "a", "fields": {"a": {"type": "string", "required": true}}})J");
    d.contract("a.json", R"J({"ref": "t/a/1.0.0", "key_field": "a", "fields": {"a": {"type": "string", "required": true}}})J");
    d.contract("c.json", R"J({"ref": "t/a/2.0.0-rc.1", "key_field": "a", "fields": {"a": {"type": "string", "required": true}}})J");
    auto p = d.load();
    REQUIRE(p.isOk());
    REQUIRE((*p)->contracts.size() == 3);
    CHECK((*p)->contracts[0].ref == "t/a/1.0.0");
    CHECK((*p)->contracts[1].ref == "t/b/1.0.0");
    CHECK((*p)->contracts[2].ref == "t/a/2.0.0-rc.1");
}

TEST_CASE("a pipeline file becomes outputs and aggregations", "[config][pipelines]")
{
    Dirs d;
    d.contract("shop.json", kShop);
    d.dir.write("pipelines/seeds/mask.seed", "secret");
    const std::string path = d.pipeline("shop.json", R"J({
      "contract": "t/shop/1.0.0",
      "outputs": [
        {"name": "analytics", "purposes": [1, 2], "mask": {"fields": ["email", "country"], "algorithm": "murmur3",
         "seed_file": "seeds/mask.seed"}},
        {"name": "marketing", "type": "cumulative", "purposes": [2], "description": "levels 0..2"}
      ],
      "aggregations": [
        {"name": "revenue", "window": "5m", "group_by": ["country"], "metrics": ["count", "sum(total)", "avg(total)",
         "min(items)", "max(items)", "distinct(cid)"], "consent": [1], "allowed_lateness": 2000, "min_group_size": 3},
        {"name": "plain", "window": 60000, "metrics": ["count"], "allowed_lateness": "0s"}
      ]})J");
    auto p = d.load();
    INFO((p.isOk() ? "" : p.status().message()));
    REQUIRE(p.isOk());
    const PipelineSpec& s = **p;
    REQUIRE(s.outputs.size() == 2);
    const OutputSpec& a = s.outputs[0];
    CHECK(a.name == "analytics");
    CHECK(a.contract == "t/shop/1.0.0");
    CHECK(a.type == OutputType::kGranular);
    CHECK(a.purposes == std::vector<int>{1, 2});
    CHECK(a.maskedFields == std::vector<std::string>{"email", "country"});
    CHECK(a.algorithm == MaskAlgorithm::kMurmur3);
    CHECK(a.seedFile == d.dir.file("pipelines/seeds/mask.seed"));
    CHECK(a.path == path);
    const OutputSpec& m = s.outputs[1];
    CHECK(m.type == OutputType::kCumulative);
    CHECK(m.purposes == std::vector<int>{2});
    CHECK(m.maskedFields.empty());
    CHECK(m.algorithm == MaskAlgorithm::kHmacSha256);
    CHECK(m.seedFile.empty());

    REQUIRE(s.aggregations.size() == 2);
    const AggregationSpec& r = s.aggregations[0];
    CHECK(r.name == "revenue");
    CHECK(r.contract == "t/shop/1.0.0");
    CHECK(r.windowMs == 300'000);
    CHECK(r.groupBy == std::vector<std::string>{"country"});
    REQUIRE(r.metrics.size() == 6);
    CHECK(r.metrics[0].kind == MetricKind::kCount);
    CHECK(r.metrics[1].kind == MetricKind::kSum);
    CHECK(r.metrics[1].field == "total");
    CHECK(r.metrics[2].kind == MetricKind::kAvg);
    CHECK(r.metrics[3].kind == MetricKind::kMin);
    CHECK(r.metrics[3].field == "items");
    CHECK(r.metrics[4].kind == MetricKind::kMax);
    CHECK(r.metrics[5].kind == MetricKind::kDistinct);
    CHECK(r.metrics[5].field == "cid");
    CHECK(r.consent == std::vector<int>{1});
    CHECK(r.allowedLatenessMs == 2000);
    CHECK(r.minGroupSize == 3);
    CHECK(s.aggregations[1].windowMs == 60'000);
    CHECK(s.aggregations[1].minGroupSize == 5);  // the documented default
    CHECK(s.aggregations[1].allowedLatenessMs == 0);

    // An absolute seed file is kept.
    Dirs e;
    e.contract("shop.json", kShop);
    const std::string seed = e.dir.write("elsewhere/seed", "s");
    e.pipeline("p.json", R"J({"contract": "t/shop/1.0.0", "outputs": [{"name": "o", "purposes": [0], "mask": {"fields": ["email"], "seed_file": ")J" +
                             seed + "\"}}]}");
    auto q = e.load();
    REQUIRE(q.isOk());
    CHECK((*q)->outputs[0].seedFile == seed);
}

TEST_CASE("pipeline errors name the file and the JSON path", "[config][pipelines][errors]")
{
    struct Case {
        const char* name;
        std::string text;
        std::string expected;  // after "<file>: "
    };
    const std::string c = R"J("contract": "t/shop/1.0.0")J";
    auto outputs = [&](const std::string& list) { return "{" + c + ", \"outputs\": [" + list + "]}"; };
    auto aggs = [&](const std::string& list) { return "{" + c + ", \"aggregations\": [" + list + "]}"; };
    const std::vector<Case> cases = {
        {"not JSON", "{\"contract\": ", "not valid JSON: "},
        {"not an object", "\"t/shop/1.0.0\"", "a pipeline must be a JSON object"},
        {"unknown key", "{" + c + ", \"outputz\": []}", "outputz: unknown key"},
        {"contract missing", R"J({"outputs": []})J", "contract: is required: the ref of the contract this pipeline reads"},
        {"unknown contract", R"J({"contract": "t/shop/2.0.0"})J", "contract: no contract 't/shop/2.0.0' is loaded"},
        {"outputs not an array", "{" + c + ", \"outputs\": {}}", "outputs: must be an array"},
        {"output not an object", outputs("1"), "outputs[0]: must be an object"},
        {"output unknown key", outputs(R"J({"name": "o", "purposes": [1], "level": 2})J"), "outputs[0].level: unknown key"},
        {"output without name", outputs(R"J({"purposes": [1]})J"), "outputs[0].name: is required"},
        {"output bad type", outputs(R"J({"name": "o", "type": "partial", "purposes": [1]})J"),
         "outputs[0].type: 'partial' is neither \"granular\" nor \"cumulative\""},
        {"output type not a string", outputs(R"J({"name": "o", "type": 1, "purposes": [1]})J"),
         "outputs[0].type: must be \"granular\" or \"cumulative\""},
        {"cumulative with two levels", outputs(R"J({"name": "o", "purposes": [1]}, {"name": "p", "type": "cumulative", "purposes": [1, 2]})J"),
         "outputs[1].purposes: a cumulative output has exactly one level"},
        {"purposes missing", outputs(R"J({"name": "o"})J"), "outputs[0].purposes: is required"},
        {"purposes empty", outputs(R"J({"name": "o", "purposes": []})J"), "outputs[0].purposes: must list at least one purpose level"},
        {"purposes not an array", outputs(R"J({"name": "o", "purposes": 1})J"), "outputs[0].purposes: must be an array of purpose levels"},
        {"purpose out of range", outputs(R"J({"name": "o", "purposes": [64]})J"),
         "outputs[0].purposes: purpose levels are integers from 0 to 63"},
        {"purpose listed twice", outputs(R"J({"name": "o", "purposes": [1, 1]})J"), "outputs[0].purposes: level 1 is listed twice"},
        {"mask not an object", outputs(R"J({"name": "o", "purposes": [1], "mask": ["email"]})J"), "outputs[0].mask: must be an object"},
        {"mask unknown key", outputs(R"J({"name": "o", "purposes": [1], "mask": {"fields": [], "salt": "x"}})J"),
         "outputs[0].mask.salt: unknown key"},
        {"mask without fields", outputs(R"J({"name": "o", "purposes": [1], "mask": {}})J"),
         "outputs[0].mask.fields: is required and must be an array of field names"},
        {"mask field not a name", outputs(R"J({"name": "o", "purposes": [1], "mask": {"fields": [1]}})J"),
         "outputs[0].mask.fields: must hold field names"},
        {"mask field unknown", outputs(R"J({"name": "o", "purposes": [1], "mask": {"fields": ["email", "phone"]}})J"),
         "outputs.o.mask.fields: 'phone' is not a field of t/shop/1.0.0"},
        {"mask algorithm unknown", outputs(R"J({"name": "o", "purposes": [1], "mask": {"fields": ["email"], "algorithm": "md5"}})J"),
         "outputs[0].mask.algorithm: must be \"hmac-sha256\" or \"murmur3\""},
        {"seed file empty", outputs(R"J({"name": "o", "purposes": [1], "mask": {"fields": ["email"], "seed_file": ""}})J"),
         "outputs[0].mask.seed_file: must be a path"},
        {"aggregations not an array", "{" + c + ", \"aggregations\": 1}", "aggregations: must be an array"},
        {"aggregation not an object", aggs("[]"), "aggregations[0]: must be an object"},
        {"aggregation unknown key", aggs(R"J({"name": "a", "window": "1m", "metrics": ["count"], "having": 1})J"),
         "aggregations[0].having: unknown key"},
        {"aggregation without name", aggs(R"J({"window": "1m", "metrics": ["count"]})J"), "aggregations[0].name: is required"},
        {"window missing", aggs(R"J({"name": "a", "metrics": ["count"]})J"), "aggregations[0].window: is required (for example \"1m\")"},
        {"window malformed", aggs(R"J({"name": "a", "window": "1 minute", "metrics": ["count"]})J"),
         "aggregations[0].window: must be a duration such as \"500ms\", \"30s\", \"1m\", \"1h\" or \"1d\""},
        {"window negative", aggs(R"J({"name": "a", "window": -5, "metrics": ["count"]})J"), "aggregations[0].window: must be a duration"},
        {"window a real", aggs(R"J({"name": "a", "window": 1.5, "metrics": ["count"]})J"), "aggregations[0].window: must be a duration"},
        {"lateness malformed", aggs(R"J({"name": "a", "window": "1m", "metrics": ["count"], "allowed_lateness": "later"})J"),
         "aggregations[0].allowed_lateness: must be a duration"},
        {"group_by not an array", aggs(R"J({"name": "a", "window": "1m", "group_by": "country", "metrics": ["count"]})J"),
         "aggregations[0].group_by: must be an array of field names"},
        {"group_by not names", aggs(R"J({"name": "a", "window": "1m", "group_by": [1], "metrics": ["count"]})J"),
         "aggregations[0].group_by: must hold field names"},
        {"metrics missing", aggs(R"J({"name": "a", "window": "1m"})J"), "aggregations[0].metrics: is required"},
        {"metrics empty", aggs(R"J({"name": "a", "window": "1m", "metrics": []})J"), "aggregations[0].metrics: is required"},
        {"metric not a string", aggs(R"J({"name": "a", "window": "1m", "metrics": [{"sum": "total"}]})J"),
         "aggregations[0].metrics: must hold strings such as \"sum(total)\""},
        {"metric unknown function", aggs(R"J({"name": "a", "window": "1m", "metrics": ["median(total)"]})J"),
         "aggregations[0].metrics: unknown metric function 'median'"},
        {"metric malformed", aggs(R"J({"name": "a", "window": "1m", "metrics": ["sum total"]})J"),
         "aggregations[0].metrics: 'sum total' is not a metric (count, sum(f), min(f), max(f), avg(f), distinct(f))"},
        {"metric without field", aggs(R"J({"name": "a", "window": "1m", "metrics": ["sum()"]})J"),
         "aggregations[0].metrics: 'sum()' is not a metric"},
        {"metric empty", aggs(R"J({"name": "a", "window": "1m", "metrics": [""]})J"), "aggregations[0].metrics: '' is not a metric"},
        {"consent out of range", aggs(R"J({"name": "a", "window": "1m", "metrics": ["count"], "consent": [-1]})J"),
         "aggregations[0].consent: purpose levels are integers from 0 to 63"},
        {"lateness missing", aggs(R"J({"name": "a", "window": "1m", "metrics": ["count"]})J"),
         "aggregations[0].allowed_lateness: is required: how long a window waits for out-of-order events"},
        {"min_group_size zero", aggs(R"J({"name": "a", "window": "1m", "metrics": ["count"], "allowed_lateness": 0, "min_group_size": 0})J"),
         "aggregations[0].min_group_size: must be an integer from 1 to 256 (distinct data subjects; default 5)"},
        {"min_group_size above the exact limit", aggs(R"J({"name": "a", "window": "1m", "metrics": ["count"], "allowed_lateness": 0, "min_group_size": 257})J"),
         "aggregations[0].min_group_size: must be an integer from 1 to 256"},
        {"min_group_size a string", aggs(R"J({"name": "a", "window": "1m", "metrics": ["count"], "allowed_lateness": 0, "min_group_size": "5"})J"),
         "aggregations[0].min_group_size: must be an integer from 1 to 256"},
    };
    for (const Case& k : cases) {
        Dirs d;
        d.contract("shop.json", kShop);
        const std::string path = d.pipeline("p.json", k.text);
        INFO("case: " << k.name << "\n" << k.text);
        CHECK_THAT(d.error(), StartsWith(path + ": " + k.expected));
    }
}

TEST_CASE("a missing seed file is named with its resolved path", "[config][pipelines][errors]")
{
    Dirs d;
    d.contract("shop.json", kShop);
    const std::string path = d.pipeline(
        "p.json", R"J({"contract": "t/shop/1.0.0", "outputs": [{"name": "o", "purposes": [1], "mask": {"fields": ["email"], "seed_file": "no/seed"}}]})J");
    CHECK(d.error() == path + ": outputs[0].mask.seed_file: " + d.dir.file("pipelines/no/seed") + " does not exist");
}

TEST_CASE("aggregation rules of aggregate::checkAggregation, with the file named once", "[config][pipelines][errors]")
{
    struct Case {
        const char* name;
        std::string aggregation;
        std::string expected;  // after "<file>: "
    };
    const std::vector<Case> cases = {
        {"PII in group_by", R"J({"name": "a", "window": "1m", "group_by": ["email"], "metrics": ["count"], "allowed_lateness": 0})J",
         "aggregation \"a\": group_by field \"email\" is PII (level 2)"},
        {"unknown group_by field", R"J({"name": "a", "window": "1m", "group_by": ["city"], "metrics": ["count"], "allowed_lateness": 0})J",
         "aggregation \"a\": group_by field \"city\" is not a field of t/shop/1.0.0"},
        {"array in group_by", R"J({"name": "a", "window": "1m", "group_by": ["counts"], "metrics": ["count"], "allowed_lateness": 0})J",
         "aggregation \"a\": group_by field \"counts\" is an array"},
        {"sum of a string", R"J({"name": "a", "window": "1m", "metrics": ["sum(country)"], "allowed_lateness": 0})J",
         "aggregation \"a\": sum(country): \"country\" is a string; sum needs an integer or number field"},
        {"metric on unknown field", R"J({"name": "a", "window": "1m", "metrics": ["max(price)"], "allowed_lateness": 0})J",
         "aggregation \"a\": max(price): \"price\" is not a field of t/shop/1.0.0"},
        {"zero window", R"J({"name": "a", "window": "0s", "metrics": ["count"], "allowed_lateness": 0})J",
         "aggregation \"a\": window must be longer than 0 ms"},
        {"metric twice", R"J({"name": "a", "window": "1m", "metrics": ["count", "count"], "allowed_lateness": 0})J",
         "aggregation \"a\": the metric count is listed twice"},
    };
    for (const Case& k : cases) {
        Dirs d;
        d.contract("shop.json", kShop);
        const std::string path =
            d.pipeline("p.json", R"J({"contract": "t/shop/1.0.0", "aggregations": [)J" + k.aggregation + "]}");
        INFO("case: " << k.name);
        const std::string m = d.error();
        CHECK_THAT(m, StartsWith(path + ": " + k.expected));
        // The file is named once, not once by the loader and again by the aggregation check.
        CHECK(m.find(path) == m.rfind(path));
    }
}

TEST_CASE("window shapes: tumbling, sliding and session windows", "[config][pipelines]")
{
    Dirs d;
    d.contract("shop.json", kShop);
    d.pipeline("shop.json", R"J({"contract": "t/shop/1.0.0", "aggregations": [
        {"name": "short", "window": "1m", "metrics": ["count"], "allowed_lateness": "0s"},
        {"name": "tumbling", "window": {"type": "tumbling", "size": "5m"}, "metrics": ["count"], "allowed_lateness": "0s"},
        {"name": "hourly", "window": {"type": "sliding", "size": "1h", "slide": "5m"}, "group_by": ["country"],
         "metrics": ["count", "sum(total)"], "allowed_lateness": "1m"},
        {"name": "visits", "window": {"type": "session", "gap": "30m"}, "group_by": ["cid"],
         "metrics": ["count", "max(total)"], "allowed_lateness": "10m", "min_group_size": 1}]})J");
    auto p = d.load();
    INFO((p.isOk() ? "" : p.status().message()));
    REQUIRE(p.isOk());
    const auto& a = (*p)->aggregations;
    REQUIRE(a.size() == 4);
    CHECK(a[0].window == WindowKind::kTumbling);
    CHECK(a[0].windowMs == 60'000);
    CHECK(a[1].window == WindowKind::kTumbling);
    CHECK(a[1].windowMs == 300'000);
    CHECK(a[2].window == WindowKind::kSliding);
    CHECK(a[2].windowMs == 3'600'000);
    CHECK(a[2].slideMs == 300'000);
    CHECK(a[3].window == WindowKind::kSession);
    CHECK(a[3].gapMs == 1'800'000);
    CHECK(a[3].groupBy == std::vector<std::string>{"cid"});
}

TEST_CASE("window shapes that cannot work name the file and the field", "[config][pipelines][errors]")
{
    struct Case {
        const char* name;
        std::string window;
        std::string groupBy;
        std::string expected;  // after "<file>: "
    };
    const std::vector<Case> cases = {
        {"no type", R"J({"size": "1m"})J", "[]", "aggregations[0].window.type: is required: \"tumbling\", \"sliding\" or \"session\""},
        {"unknown type", R"J({"type": "hopping", "size": "1m"})J", "[]",
         "aggregations[0].window.type: 'hopping' is not \"tumbling\", \"sliding\" or \"session\""},
        {"unknown key", R"J({"type": "tumbling", "size": "1m", "offset": "1s"})J", "[]", "aggregations[0].window.offset: unknown key"},
        {"sliding without slide", R"J({"type": "sliding", "size": "1h"})J", "[]",
         "aggregations[0].window.slide: is required for a sliding window"},
        {"sliding without size", R"J({"type": "sliding", "slide": "1m"})J", "[]",
         "aggregations[0].window.size: is required for a sliding window"},
        {"slide a word", R"J({"type": "sliding", "size": "1h", "slide": "often"})J", "[]",
         "aggregations[0].window.slide: must be a duration"},
        {"slide on a tumbling window", R"J({"type": "tumbling", "size": "1h", "slide": "1m"})J", "[]",
         "aggregations[0].window.slide: does not apply to a tumbling window"},
        {"session without gap", R"J({"type": "session"})J", "[\"sid\"]", "aggregations[0].window.gap: is required for a session window"},
        {"size on a session", R"J({"type": "session", "gap": "1m", "size": "1h"})J", "[\"sid\"]",
         "aggregations[0].window.size: does not apply to a session window"},
        {"slide not dividing size", R"J({"type": "sliding", "size": "1h", "slide": "7m"})J", "[]",
         "aggregation \"a\": window.slide (420000 ms) does not divide window.size (3600000 ms)"},
        {"zero gap", R"J({"type": "session", "gap": "0s"})J", "[\"sid\"]", "aggregation \"a\": window.gap must be longer than 0 ms"},
        {"session without a bounding group", R"J({"type": "session", "gap": "30m"})J", "[\"country\"]",
         "aggregation \"a\": a session window needs group_by to include the contract's key_field \"sid\" or "
         "data_subject_field \"cid\""},
        {"PII group of a sliding window", R"J({"type": "sliding", "size": "1h", "slide": "1m"})J", "[\"cid\"]",
         "aggregation \"a\": group_by field \"cid\" is PII (level 1)"},
    };
    for (const Case& k : cases) {
        Dirs d;
        d.contract("shop.json", kShop);
        const std::string path = d.pipeline(
            "p.json", R"J({"contract": "t/shop/1.0.0", "aggregations": [{"name": "a", "window": )J" + k.window +
                          ", \"group_by\": " + k.groupBy + R"J(, "metrics": ["count"], "allowed_lateness": "0s"}]})J");
        INFO("case: " << k.name);
        const std::string m = d.error();
        CHECK_THAT(m, StartsWith(path + ": " + k.expected));
        CHECK(m.find(path) == m.rfind(path));
    }
}

TEST_CASE("output and aggregation names share one SQL namespace", "[config][pipelines][errors]")
{
    struct Case {
        const char* name;
        std::string pipeline;
        std::string expected;  // after "<file>: "
    };
    const std::string c = R"J("contract": "t/shop/1.0.0")J";
    const std::vector<Case> cases = {
        {"output and aggregation", "{" + c + R"J(, "outputs": [{"name": "x", "purposes": [1]}], "aggregations": [{"name": "x", "window": "1m", "metrics": ["count"], "allowed_lateness": 0}]})J",
         "aggregations.x: the name 'x' is used twice (outputs, aggregations and contract views share one namespace)"},
        {"two outputs", "{" + c + R"J(, "outputs": [{"name": "x", "purposes": [1]}, {"name": "x", "purposes": [2]}]})J",
         "outputs.x: the name 'x' is used twice"},
        {"a contract's view", "{" + c + R"J(, "outputs": [{"name": "t_shop_1_0_0", "purposes": [1]}]})J",
         "outputs.t_shop_1_0_0: the name 't_shop_1_0_0' is used twice"},
        {"a built-in table", "{" + c + R"J(, "aggregations": [{"name": "batches", "window": "1m", "metrics": ["count"], "allowed_lateness": 0}]})J",
         "aggregations.batches: 'batches' is the name of a built-in table"},
        {"a built-in view", "{" + c + R"J(, "outputs": [{"name": "dead_letters", "purposes": [1]}]})J",
         "outputs.dead_letters: 'dead_letters' is the name of a built-in table"},
        {"the producers table", "{" + c + R"J(, "outputs": [{"name": "producers", "purposes": [1]}]})J",
         "outputs.producers: 'producers' is the name of a built-in table"},
        {"the batch_log view", "{" + c + R"J(, "outputs": [{"name": "batch_log", "purposes": [1]}]})J",
         "outputs.batch_log: 'batch_log' is the name of a built-in table"},
        {"the exporters' cursors", "{" + c + R"J(, "aggregations": [{"name": "export_cursors", "window": "1m", "metrics": ["count"], "allowed_lateness": 0}]})J",
         "aggregations.export_cursors: 'export_cursors' is the name of a built-in table"},
        {"the table registry", "{" + c + R"J(, "outputs": [{"name": "sluice_tables", "purposes": [1]}]})J",
         "outputs.sluice_tables: 'sluice_tables' is the name of a built-in table"},
        {"a reserved prefix", "{" + c + R"J(, "outputs": [{"name": "events_x", "purposes": [1]}]})J",
         "outputs.events_x: 'events_x' may not start with events_"},
        {"sqlite prefix", "{" + c + R"J(, "aggregations": [{"name": "sqlite_stat", "window": "1m", "metrics": ["count"], "allowed_lateness": 0}]})J",
         "aggregations.sqlite_stat: 'sqlite_stat' may not start with sqlite_"},
        {"uppercase", "{" + c + R"J(, "outputs": [{"name": "Analytics", "purposes": [1]}]})J",
         "outputs.Analytics: 'Analytics' must be lowercase letters, digits and _ (starting with a letter)"},
        {"starts with a digit", "{" + c + R"J(, "outputs": [{"name": "1x", "purposes": [1]}]})J",
         "outputs.1x: '1x' must be lowercase letters"},
        {"quote in name", "{" + c + R"J(, "outputs": [{"name": "a\"b", "purposes": [1]}]})J",
         "outputs.a\"b: 'a\"b' must be lowercase letters"},
    };
    for (const Case& k : cases) {
        Dirs d;
        d.contract("shop.json", kShop);
        const std::string path = d.pipeline("p.json", k.pipeline);
        INFO("case: " << k.name);
        CHECK_THAT(d.error(), StartsWith(path + ": " + k.expected));
    }

    // Names in different pipeline files clash as well.
    Dirs d;
    d.contract("shop.json", kShop);
    d.pipeline("a.json", "{" + c + R"J(, "outputs": [{"name": "x", "purposes": [1]}]})J");
    const std::string b = d.pipeline("b.json", "{" + c + R"J(, "aggregations": [{"name": "x", "window": "1m", "metrics": ["count"], "allowed_lateness": 0}]})J");
    CHECK_THAT(d.error(), StartsWith(b + ": aggregations.x: the name 'x' is used twice"));
}

TEST_CASE("no pipelines directory means no outputs or aggregations", "[config][pipelines]")
{
    Dirs d;
    d.contract("shop.json", kShop);
    d.config.pipelinesDir.clear();
    auto p = d.load();
    REQUIRE(p.isOk());
    CHECK((*p)->outputs.empty());
    CHECK((*p)->aggregations.empty());

    // builtin: pipelines need the builtin contract.
    Dirs e;
    e.contract("shop.json", kShop);
    e.config.pipelinesDir = kBuiltinSource;
    CHECK(e.error() == "builtin:acme-checkout-pipeline.json: contract: no contract 'acme/checkout/1.0.0' is loaded");
}
