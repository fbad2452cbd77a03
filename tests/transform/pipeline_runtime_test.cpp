// PipelineRuntime at its seam: a PipelineSpec and a master key in, the compiled configuration
// out (per-output plans, masking seeds, every table), without a Transformer or a database.
#include <catch2/catch.hpp>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "privacy/key_wrap.h"
#include "support/reference_store.h"
#include "support/temp_dir.h"
#include "transform/pipeline_runtime.h"

namespace sluice::transform {
namespace {

using sluice::testing::randomMasterKey;
using sluice::testing::TempDir;

// The built-in reference pipeline (contract acme/checkout/1.0.0, output analytics, aggregation
// revenue_by_country), as a value a test may change.
PipelineSpec referenceSpec(const TempDir& dir)
{
    auto cfg = config::loadForTools("", dir.str());
    REQUIRE(cfg.isOk());
    return *cfg->pipelineSpec;
}

privacy::KeyWrapper newWrapper()
{
    auto w = privacy::KeyWrapper::create(randomMasterKey()->clone());
    REQUIRE(w.isOk());
    return std::move(*w);
}

std::shared_ptr<const PipelineRuntime> build(const PipelineSpec& spec, const privacy::KeyWrapper& wrapper)
{
    auto rt = PipelineRuntime::build(std::make_shared<const PipelineSpec>(spec), wrapper);
    REQUIRE(rt.isOk());
    return *rt;
}

// The contract field of that name, by index.
size_t field(const ContractSpec& contract, const std::string& name)
{
    const int index = contract.fieldIndex(name);
    REQUIRE(index >= 0);
    return static_cast<size_t>(index);
}

OutputSpec extraOutput(const std::string& name, OutputType type, std::vector<int> purposes)
{
    OutputSpec o;
    o.name = name;
    o.contract = "acme/checkout/1.0.0";
    o.type = type;
    o.purposes = std::move(purposes);
    o.maskedFields = {"ip"};
    return o;
}

}  // namespace

TEST_CASE("pipeline runtime: the reference pipeline's plan and tables", "[transform][runtime]")
{
    TempDir dir;
    const privacy::KeyWrapper wrapper = newWrapper();
    const auto rt = build(referenceSpec(dir), wrapper);
    REQUIRE(rt->contracts);
    REQUIRE(rt->outputs.size() == 1);
    const OutputPlan& plan = rt->outputs[0];
    CHECK(plan.spec->name == "analytics");
    CHECK(plan.contract == 0);
    CHECK(rt->outputsByContract == std::vector<std::vector<int>>{{0}});

    const ContractSpec& c = rt->spec->contracts[0];
    REQUIRE(plan.masked.size() == c.fields.size());
    REQUIRE(plan.decrypted.size() == c.fields.size());
    for (size_t f = 0; f < c.fields.size(); ++f) {
        INFO(c.fields[f].name);
        CHECK(plan.masked[f] == (c.fields[f].name == "email"));
    }
    // Purposes [1, 2]: customer_id (pii 1), email and ip (pii 2) in clear; the session id
    // (pii 0, the key field) stays encrypted; fields that are not PII are never "decrypted".
    CHECK_FALSE(plan.decrypted[field(c, "session_id")]);
    CHECK(plan.decrypted[field(c, "customer_id")]);
    CHECK(plan.decrypted[field(c, "email")]);
    CHECK(plan.decrypted[field(c, "ip")]);
    CHECK_FALSE(plan.decrypted[field(c, "country")]);
    CHECK_FALSE(plan.decrypted[field(c, "total")]);

    std::vector<std::string> tables;
    for (const TableDef& t : rt->schema->tables)
        tables.push_back(t.name);
    CHECK(tables == std::vector<std::string>{"events_acme_checkout_1_0_0", "derived_analytics", "agg_revenue_by_country"});
    CHECK(rt->schema->pipeline == rt->spec);
}

TEST_CASE("pipeline runtime: a cumulative output decrypts every level up to its own", "[transform][runtime]")
{
    TempDir dir;
    PipelineSpec spec = referenceSpec(dir);
    spec.outputs.push_back(extraOutput("up_to_one", OutputType::kCumulative, {1}));
    const auto rt = build(spec, newWrapper());
    REQUIRE(rt->outputs.size() == 2);
    CHECK(rt->outputsByContract == std::vector<std::vector<int>>{{0, 1}});
    const OutputPlan& plan = rt->outputs[1];
    const ContractSpec& c = rt->spec->contracts[0];
    CHECK(plan.decrypted[field(c, "session_id")]);
    CHECK(plan.decrypted[field(c, "customer_id")]);
    CHECK_FALSE(plan.decrypted[field(c, "email")]);
    CHECK_FALSE(plan.decrypted[field(c, "ip")]);
    CHECK(plan.masked[field(c, "ip")]);
    CHECK_FALSE(plan.masked[field(c, "email")]);
    CHECK(rt->schema->tables.size() == 4);
}

TEST_CASE("pipeline runtime: masking seeds come from the master key per output, or from the seed file",
          "[transform][runtime]")
{
    TempDir dir;
    PipelineSpec spec = referenceSpec(dir);
    spec.outputs.push_back(extraOutput("second", OutputType::kGranular, {1}));
    const privacy::KeyWrapper wrapper = newWrapper();
    const auto a = build(spec, wrapper);
    const auto again = build(spec, wrapper);
    const auto otherKey = build(spec, newWrapper());
    REQUIRE(a->outputs.size() == 2);
    CHECK(a->outputs[0].seed->size() == 32);
    // The same master key derives the same seed (masks stay stable across restarts and reloads)...
    CHECK(a->outputs[0].seed->view() == again->outputs[0].seed->view());
    CHECK(a->outputs[1].seed->view() == again->outputs[1].seed->view());
    // ...each output its own, and another master key others.
    CHECK(a->outputs[0].seed->view() != a->outputs[1].seed->view());
    CHECK(a->outputs[0].seed->view() != otherKey->outputs[0].seed->view());

    spec.outputs[1].seedFile = dir.file("second.seed");
    std::ofstream(spec.outputs[1].seedFile) << "a seed of our own\n";
    const auto fromFile = build(spec, wrapper);
    CHECK(fromFile->outputs[1].seed->view() == "a seed of our own");
    CHECK(fromFile->outputs[0].seed->view() == a->outputs[0].seed->view());

    spec.outputs[1].seedFile = dir.file("missing.seed");
    auto missing = PipelineRuntime::build(std::make_shared<const PipelineSpec>(spec), wrapper);
    REQUIRE_FALSE(missing.isOk());
    CHECK(missing.status().message().find("output second: masking seed") != std::string::npos);
}

TEST_CASE("pipeline runtime: an aggregation's signature changes with what makes its state", "[transform][runtime]")
{
    TempDir dir;
    const PipelineSpec spec = referenceSpec(dir);
    REQUIRE(spec.aggregations.size() == 1);
    const AggregationSpec& base = spec.aggregations[0];
    CHECK(aggregationSignature(base) == aggregationSignature(AggregationSpec(base)));
    AggregationSpec renamed = base;
    renamed.path = "elsewhere.json";
    CHECK(aggregationSignature(renamed) == aggregationSignature(base));

    std::vector<AggregationSpec> changed(8, base);
    changed[0].windowMs = 2 * base.windowMs;
    changed[1].allowedLatenessMs = base.allowedLatenessMs + 1;
    changed[2].groupBy = {"device"};
    changed[3].metrics.pop_back();
    changed[4].consent = {1};
    // Tumbling and sliding windows of one size have the same table layout, so a reload that
    // changes one into the other under the same name is accepted: the aggregator must not be kept.
    changed[5].window = WindowKind::kSliding;
    changed[5].slideMs = base.windowMs / 2;
    changed[6].window = WindowKind::kSliding;
    changed[6].slideMs = base.windowMs / 4;
    changed[7].window = WindowKind::kSession;
    changed[7].gapMs = base.windowMs;
    for (size_t i = 0; i < changed.size(); ++i) {
        INFO("change " << i);
        CHECK(aggregationSignature(changed[i]) != aggregationSignature(base));
    }
    CHECK(aggregationSignature(changed[5]) != aggregationSignature(changed[6]));
}

}  // namespace sluice::transform
