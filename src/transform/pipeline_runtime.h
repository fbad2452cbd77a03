// One configuration (contracts, derived outputs, aggregations) prepared for the pipeline:
// compiled contracts, per-output field plans and masking secrets, and the table definitions.
// Immutable and shared; SIGHUP builds a new one and the processor switches between batches.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "contract/validator.h"
#include "core/commit.h"
#include "core/spec.h"
#include "core/status.h"
#include "privacy/key_wrap.h"
#include "privacy/secret.h"
#include "store/batch_writer.h"

namespace sluice::transform {

struct OutputPlan {
    const OutputSpec* spec = nullptr;
    int contract = -1;
    std::vector<bool> masked;     // per contract field
    std::vector<bool> decrypted;  // per contract field: a PII field this output shows in clear
    std::shared_ptr<const privacy::SecretBytes> seed;
};

struct PipelineRuntime {
    PipelinePtr spec;
    std::shared_ptr<const contract::ContractSet> contracts;
    std::vector<OutputPlan> outputs;
    std::vector<std::vector<int>> outputsByContract;
    std::shared_ptr<const SchemaChange> schema;  // every table of this configuration

    // Compiles and prepares `spec`; reads masking seeds (or derives them from the master key when
    // an output names no seed file).
    static Result<std::shared_ptr<const PipelineRuntime>> build(PipelinePtr spec, const privacy::KeyWrapper& wrapper);
};

// The SQL functions the store's writer registers for the aggregation tables: sketch unions and
// estimates (distinct), subject set unions and counts (k-anonymity).
store::SketchFunctions sketchFunctions();

// A canonical text of what makes an aggregation's state (its window shape, group_by, metrics,
// consent, lateness): two specs with the same signature can keep one Aggregator across a reload.
std::string aggregationSignature(const AggregationSpec& spec);

}  // namespace sluice::transform
