// Reads and checks a job file (docs/jobs.md). Everything that can be known without reading a
// row is checked here: unknown keys, the contract and its fields, the time zone, the outputs'
// grammar, inputs that match no file. Messages read "<job file>: <where>: <problem>".
#pragma once

#include <string>

#include "core/status.h"
#include "job/job_spec.h"

namespace sluice::job {

Result<JobSpec> loadJobFile(const std::string& path);

// The job's columns against a CSV header (or, for JSONL, nothing to check): every column must
// be a contract field, renamed to one, ignored, or the timestamp / consent / event-id field, and
// every required field must have a column. `file` names the input in messages.
Status checkHeader(const JobSpec& job, const std::vector<std::string>& header, const std::string& file);

}  // namespace sluice::job
