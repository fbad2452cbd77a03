// The pieces of the contract and pipeline grammar (docs/operations.md), for other file formats
// that embed them: a batch job file names a contract and carries derived outputs and
// aggregations written exactly as in a pipeline file. Messages read "<file>: <where>: <problem>".
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/spec.h"
#include "core/status.h"

namespace sluice::config {

// One contract, as a contract file holds it (and the database's contracts table keeps it);
// `file` names it in messages.
Result<ContractSpec> parseContract(const std::string& text, const std::string& file);
// One entry of a pipeline's "outputs" / "aggregations" for `contract` (a ref); `where` names it
// in messages ("outputs[0]"), relative seed files resolve against `baseDir`.
Result<OutputSpec> parseOutput(const nlohmann::ordered_json& j, const std::string& contract, const std::string& file,
                               const std::string& where, const std::filesystem::path& baseDir);
Result<AggregationSpec> parseAggregation(const nlohmann::ordered_json& j, const std::string& contract,
                                         const std::string& file, const std::string& where);
// The checks loadPipeline makes once everything is read: distinct SQL names, masked fields
// that exist, aggregations that fit their contract.
Status checkPipeline(const PipelineSpec& pipeline);

}  // namespace sluice::config
