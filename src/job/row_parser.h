// Turns one raw row of a chunk into an event of the job's contract: the record reader's
// verdict (CSV problems), UTF-8, every contract rule (through contract/'s readers and Checker),
// then the job's own fields: the record's time (format and zone), its consent (mapping), its
// event id. A refused row gets a reason code (the contract's, or one of the job's: see
// docs/jobs.md), a message that never quotes a value, and the input column when one is at fault.
//
// One RowParser per lane (it keeps the time zone's cache); the job spec, mapper and layouts are
// shared read-only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "contract/validator.h"
#include "job/chunk.h"
#include "job/consent_map.h"
#include "job/input_layout.h"
#include "job/job_spec.h"
#include "job/timestamp.h"

namespace sluice::job {

// The job's own reason codes, beside the contract's (core/reason.h).
inline constexpr std::string_view kUnbalancedQuote = "unbalanced_quote";
inline constexpr std::string_view kWrongColumnCount = "wrong_column_count";
inline constexpr std::string_view kUnparsableTimestamp = "unparsable_timestamp";
inline constexpr std::string_view kUnmappableConsent = "unmappable_consent";

struct RowReject {
    uint32_t row = 0;          // index in the chunk
    std::string code;
    std::string message;
    std::string column;        // the input column or key at fault, when known
    bool contractReason = false;  // `reason` holds the contract's reason (the transform records it)
    contract::Rejection why;   // contractReason: the rejection itself
};

class RowParser {
public:
    RowParser(const JobSpec& job, const ConsentMapper& consent, TimestampParser time, int64_t maxFutureMs);

    // False with `reject` filled when the row is refused. Values are copied into `arena`.
    bool parse(contract::Validator& validator, const Chunk& chunk, uint32_t index, const InputLayout& layout,
               Arena& arena, int64_t nowMs, contract::ParsedEvent& out, RowReject& reject);

private:
    bool time(const InputLayout& layout, int64_t nowMs, int64_t& ms, RowReject& reject);
    bool consent(ConsentMask& mask, RowReject& reject);

    const JobSpec& job_;
    const ConsentMapper& consent_;
    TimestampParser time_;
    int64_t maxFutureMs_;
    contract::RecordExtras extras_;
    std::vector<std::string_view> cells_;
    std::string why_;
};

// A RowParser with what it needs on one thread of its own: the contract's Validator (limits from
// the job's input) and the consent mapping. `sluicectl job check` and `job run --send` read rows
// this way, outside the transform's lanes. Not movable: the parser refers to the mapping.
class RowChecker {
public:
    static Result<std::unique_ptr<RowChecker>> create(const JobSpec& job);

    // RowParser::parse with this checker's validator.
    bool parse(const Chunk& chunk, uint32_t index, const InputLayout& layout, Arena& arena, int64_t nowMs,
               contract::ParsedEvent& out, RowReject& reject)
    {
        return parser_.parse(validator_, chunk, index, layout, arena, nowMs, out, reject);
    }

private:
    RowChecker(const JobSpec& job, std::shared_ptr<const contract::ContractSet> contracts, contract::Limits limits,
               TimestampParser time);

    contract::Validator validator_;
    ConsentMapper consent_;
    RowParser parser_;  // after consent_, which it refers to
};

}  // namespace sluice::job
