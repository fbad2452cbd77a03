// The exporters directory (pipeline.exporters): read with the pipeline, at start and on SIGHUP.
#pragma once

#include "config/config.h"

namespace sluice::config {

// Parses every *.json file of config.exportersDir (none when it is "") into pipeline.exporters,
// checking each against the pipeline's contracts, outputs and aggregations.
Status loadExporters(const PipelineConfig& config, PipelineSpec& pipeline);

}  // namespace sluice::config
