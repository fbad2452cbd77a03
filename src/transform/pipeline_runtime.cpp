#include "transform/pipeline_runtime.h"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "aggregate/aggregation_table.h"
#include "aggregate/hyper_log_log.h"
#include "aggregate/subject_set.h"
#include "privacy/consent.h"
#include "privacy/masker.h"
#include "store/schema.h"

namespace sluice::transform {
namespace {

// An upsert of a distinct metric sets the sketch to sluice_hll_merge(old, new) and the estimate
// to sluice_hll_estimate(sluice_hll_merge(old, new)) of the same row; SQLite evaluates both.
// The last merge of each thread (its inputs and the merged sketch) is remembered, so that the
// second merge costs a comparison and the estimate needs no parse: the writer's per-batch cost
// at small batches was mostly these parses and merges (docs/performance.md).
struct LastMerge {
    bool valid = false;
    bool hasA = false;
    bool hasB = false;
    std::string a;
    std::string b;
    std::string serialized;
    aggregate::HyperLogLog merged;
};
thread_local LastMerge tLastMerge;

Result<std::string> mergeRemembered(std::optional<std::string_view> a, std::optional<std::string_view> b)
{
    LastMerge& last = tLastMerge;
    if (last.valid && last.hasA == a.has_value() && last.hasB == b.has_value() && (!a || *a == last.a) &&
        (!b || *b == last.b))
        return last.serialized;
    last.valid = false;
    aggregate::HyperLogLog merged;
    if (a) {
        auto parsed = aggregate::HyperLogLog::parse(*a);
        if (!parsed)
            return parsed.status();
        merged = std::move(*parsed);
    }
    if (b) {
        auto parsed = aggregate::HyperLogLog::parse(*b);
        if (!parsed)
            return parsed.status();
        merged.merge(*parsed);
    }
    last.hasA = a.has_value();
    last.hasB = b.has_value();
    last.a.assign(a.value_or(std::string_view()));
    last.b.assign(b.value_or(std::string_view()));
    last.serialized.clear();
    merged.serialize(last.serialized);
    last.merged = std::move(merged);
    last.valid = true;
    return last.serialized;
}

Result<double> estimateRemembered(std::optional<std::string_view> blob)
{
    const LastMerge& last = tLastMerge;
    if (blob && last.valid && *blob == last.serialized)
        return last.merged.estimate();
    return aggregate::estimateSerialized(blob);
}

}  // namespace

Result<std::shared_ptr<const PipelineRuntime>> PipelineRuntime::build(PipelinePtr spec,
                                                                       const privacy::KeyWrapper& wrapper)
{
    auto rt = std::make_shared<PipelineRuntime>();
    rt->spec = spec;
    auto contracts = contract::ContractSet::build(spec);
    if (!contracts)
        return contracts.status();
    rt->contracts = std::move(*contracts);
    rt->outputsByContract.resize(spec->contracts.size());

    auto schema = std::make_shared<SchemaChange>();
    schema->pipeline = spec;
    for (const ContractSpec& c : spec->contracts)
        schema->tables.push_back(store::eventsTable(c));

    for (const OutputSpec& o : spec->outputs) {
        OutputPlan plan;
        plan.spec = &o;
        plan.contract = spec->contractIndex(o.contract);
        const ContractSpec& c = spec->contracts[static_cast<size_t>(plan.contract)];
        plan.masked.assign(c.fields.size(), false);
        plan.decrypted.assign(c.fields.size(), false);
        for (const std::string& m : o.maskedFields)
            plan.masked[static_cast<size_t>(c.fieldIndex(m))] = true;
        for (size_t f = 0; f < c.fields.size(); ++f) {
            const int level = c.fields[f].pii;
            if (level < 0)
                continue;
            plan.decrypted[f] = privacy::outputDecrypts(o, level);
        }
        Result<privacy::SecretBytes> seed = o.seedFile.empty()
                                                ? wrapper.deriveKey("sluice mask seed v1 " + o.name, 32)
                                                : privacy::readMaskSeed(o.seedFile, o.algorithm);
        if (!seed)
            return seed.status().withContext("output " + o.name + ": masking seed");
        plan.seed = std::make_shared<const privacy::SecretBytes>(std::move(*seed));
        rt->outputsByContract[static_cast<size_t>(plan.contract)].push_back(static_cast<int>(rt->outputs.size()));
        rt->outputs.push_back(std::move(plan));
        schema->tables.push_back(store::derivedTable(o, c, privacy::derivedRowFields(o, c)));
    }
    for (const AggregationSpec& a : spec->aggregations) {
        auto table = aggregate::AggregationTable::create(a, *spec->findContract(a.contract));
        if (!table)
            return table.status().withContext(a.path);
        schema->tables.push_back(table->tableDef());
    }
    rt->schema = std::move(schema);
    return std::shared_ptr<const PipelineRuntime>(std::move(rt));
}

store::SketchFunctions sketchFunctions()
{
    store::SketchFunctions f;
    f.merge = mergeRemembered;
    f.estimate = estimateRemembered;
    f.subjectsMerge = aggregate::mergeSubjectSets;
    f.subjectsCount = aggregate::countSubjectSet;
    return f;
}

std::string aggregationSignature(const AggregationSpec& a)
{
    std::string s = a.contract + "|" + std::to_string(static_cast<int>(a.window)) + "|" + std::to_string(a.windowMs) +
                    "|" + std::to_string(a.slideMs) + "|" + std::to_string(a.gapMs) + "|" +
                    std::to_string(a.allowedLatenessMs) + "|";
    for (const std::string& g : a.groupBy)
        s += g + ",";
    s += "|";
    for (const MetricSpec& m : a.metrics)
        s += m.column() + ",";
    s += "|";
    for (int c : a.consent)
        s += std::to_string(c) + ",";
    return s;
}

}  // namespace sluice::transform
