// How one input file's records map onto the job's contract (contract::RecordLayout), built from
// the job file's rules and, for CSV, the file's header; and the way back from a contract field
// to the input column that filled it, for reject messages.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "contract/record_layout.h"
#include "core/status.h"
#include "job/job_spec.h"

namespace sluice::job {

struct InputLayout {
    contract::RecordLayout layout;
    std::vector<std::string> header;                          // CSV: the column names
    std::unordered_map<std::string, std::string> columnOf;    // contract field -> input name

    // The input column of a contract field ("" when unknown).
    std::string column(const std::string& field) const
    {
        auto it = columnOf.find(field);
        return it == columnOf.end() ? std::string() : it->second;
    }
};

// CSV: `header` is the file's header (checkHeader() has accepted it). JSONL: empty.
std::shared_ptr<const InputLayout> makeLayout(const JobSpec& job, const std::vector<std::string>& header);

}  // namespace sluice::job
