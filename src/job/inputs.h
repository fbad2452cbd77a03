// The job's input files as a run sees them before reading any row: their size and modification
// time (what a checkpoint must match), their display name, and how their records map onto the
// contract (for CSV, from the header, which is checked here).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "job/input_layout.h"
#include "job/job_spec.h"

namespace sluice::job {

struct InputInfo {
    std::string path;
    std::string name;   // relative to the job file's directory when inside it: messages, rejects
    uint64_t size = 0;
    int64_t mtimeNs = 0;
    std::shared_ptr<const InputLayout> layout;
};

// Every input's size and header, checked against the job (checkHeader).
Result<std::vector<InputInfo>> inspectInputs(const JobSpec& job);

// What an interrupted run must have in common with this one to be continued: the job file's
// text and every input's path, size and modification time.
std::string fingerprintOf(const JobSpec& job, const std::vector<InputInfo>& inputs);

}  // namespace sluice::job
