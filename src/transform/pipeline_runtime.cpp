#include "transform/pipeline_runtime.h"

#include <algorithm>

#include "aggregate/aggregation_table.h"
#include "aggregate/hyper_log_log.h"
#include "aggregate/subject_set.h"
#include "privacy/consent.h"
#include "privacy/masker.h"
#include "store/schema.h"

namespace sluice::transform {

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
        schema->tables.push_back(store::derivedTable(o, c));
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
    f.merge = aggregate::mergeSerialized;
    f.estimate = aggregate::estimateSerialized;
    f.subjectsMerge = aggregate::mergeSubjectSets;
    f.subjectsCount = aggregate::countSubjectSet;
    return f;
}

std::string aggregationSignature(const AggregationSpec& a)
{
    std::string s = a.contract + "|" + std::to_string(a.windowMs) + "|" + std::to_string(a.allowedLatenessMs) + "|";
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
