// The built-in contract and pipeline (spec section 11's reference workload), selected with
// `contracts = builtin:` and `pipelines = builtin:`.
#pragma once

namespace sluice::config {

extern const char* const kBuiltinContract;
extern const char* const kBuiltinPipeline;
inline constexpr const char* kBuiltinSource = "builtin:";

}  // namespace sluice::config
