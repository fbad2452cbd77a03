#include "job/row_parser.h"

#include <simdjson.h>

#include "contract/text_record.h"

namespace sluice::job {
namespace {

constexpr size_t kMaxEventIdBytes = 256;  // as meta.event_id

void jobReject(RowReject& r, std::string_view code, std::string message, std::string column = {})
{
    r.code = std::string(code);
    r.message = std::move(message);
    r.column = std::move(column);
    r.contractReason = false;
}

}  // namespace

RowParser::RowParser(const JobSpec& job, const ConsentMapper& consent, TimestampParser time, int64_t maxFutureMs)
    : job_(job), consent_(consent), time_(std::move(time)), maxFutureMs_(maxFutureMs)
{
}

bool RowParser::time(const InputLayout& layout, int64_t nowMs, int64_t& ms, RowReject& reject)
{
    (void)layout;
    const std::string& column = job_.timestamp.column;
    if (!extras_.haveTime || extras_.time.kind == contract::RawScalar::Kind::kNull) {
        jobReject(reject, kUnparsableTimestamp, "the timestamp field '" + column + "' is missing or empty", column);
        return false;
    }
    using Kind = contract::RawScalar::Kind;
    bool ok = false;
    why_.clear();
    switch (extras_.time.kind) {
    case Kind::kString: ok = time_.parse(extras_.time.s, ms, why_); break;
    case Kind::kInt: ok = time_.fromNumber(static_cast<double>(extras_.time.i), ms, why_); break;
    case Kind::kUint:
    case Kind::kDouble: ok = time_.fromNumber(extras_.time.d, ms, why_); break;
    default: why_ = "not a string or a number"; break;
    }
    if (!ok) {
        jobReject(reject, kUnparsableTimestamp, "the timestamp field '" + column + "': " + why_, column);
        return false;
    }
    contract::Rejection range;
    if (!contract::Checker::eventTime(ms, nowMs, maxFutureMs_, "the time in field '" + column + "'", range)) {
        reject.code = std::string(reasonCode(range.reason));
        reject.message = range.message;
        reject.column = column;
        reject.contractReason = true;
        reject.why = std::move(range);
        return false;
    }
    return true;
}

bool RowParser::consent(ConsentMask& mask, RowReject& reject)
{
    using Outcome = ConsentMapper::Outcome;
    using Kind = contract::RawScalar::Kind;
    const std::string& column = job_.consent.column;
    Outcome outcome = Outcome::kUnmappable;
    if (!extras_.haveConsent || extras_.consent.kind == Kind::kNull) {
        outcome = consent_.map({}, false, mask);
    } else if (extras_.consent.kind == Kind::kString) {
        outcome = consent_.map(extras_.consent.s, true, mask);
    } else if (extras_.consent.kind == Kind::kArray && extras_.consentIsLevels) {
        outcome = consent_.mapLevels(extras_.consentLevels, mask);
    } else if (extras_.consent.kind == Kind::kInt) {
        outcome = consent_.mapLevels({extras_.consent.i}, mask);
    } else {
        outcome = consent_.map({}, false, mask);  // neither text nor levels: unmapped
        if (outcome == Outcome::kOk)
            return true;
        outcome = Outcome::kUnmappable;
    }
    switch (outcome) {
    case Outcome::kOk: return true;
    case Outcome::kBadLevels:
        reject.code = std::string(reasonCode(Reason::kBadConsent));
        reject.message = "the consent field '" + column + "' must hold purpose levels from 0 to " +
                         std::to_string(kMaxPurposeLevel);
        reject.column = column;
        reject.contractReason = true;
        reject.why.reason = Reason::kBadConsent;
        reject.why.message = reject.message;
        return false;
    case Outcome::kUnmappable:
        jobReject(reject, kUnmappableConsent,
                  column.empty() ? "no consent field and no consent.default"
                                 : "the consent field '" + column +
                                       "' is absent, empty or holds a value that consent.values does not map, and "
                                       "there is no consent.default",
                  column);
        return false;
    }
    return false;
}

bool RowParser::parse(contract::Validator& validator, const Chunk& chunk, uint32_t index, const InputLayout& layout,
                      Arena& arena, int64_t nowMs, contract::ParsedEvent& out, RowReject& reject)
{
    const RawRow& row = chunk.rows[index];
    reject.row = index;
    switch (row.problem) {
    case RowProblem::kNone: break;
    case RowProblem::kBadQuote:
        jobReject(reject, kUnbalancedQuote,
                  "a quoted field is not closed (before the end of the input or within input.max_row_bytes), or a "
                  "quote stands where RFC 4180 allows none");
        return false;
    case RowProblem::kColumnCount:
        jobReject(reject, kWrongColumnCount,
                  "the row has " + std::to_string(row.cellCount) + " column(s); the header has " +
                      std::to_string(layout.header.size()));
        return false;
    case RowProblem::kTooLarge:
        jobReject(reject, reasonCode(Reason::kTooLarge),
                  "the row is longer than input.max_row_bytes (" + std::to_string(job_.input.maxRowBytes) + " bytes)");
        return false;
    }
    const std::string_view text(chunk.text.data() + row.offset, row.size);
    contract::Rejection why;
    bool ok = false;
    if (job_.input.format == InputFormat::kCsv) {
        if (!simdjson::validate_utf8(text.data(), text.size())) {
            std::string column;
            for (uint32_t c = 0; c < row.cellCount; ++c) {
                const auto [offset, size] = chunk.cells[row.firstCell + c];
                if (!simdjson::validate_utf8(chunk.text.data() + offset, size)) {
                    column = c < layout.header.size() ? layout.header[c] : std::string();
                    break;
                }
            }
            reject.code = std::string(reasonCode(Reason::kBadUtf8));
            reject.message = "invalid UTF-8";
            reject.column = column;
            reject.contractReason = true;
            reject.why.reason = Reason::kBadUtf8;
            reject.why.message = reject.message;
            reject.why.contract = 0;
            return false;
        }
        cells_.clear();
        for (uint32_t c = 0; c < row.cellCount; ++c) {
            const auto [offset, size] = chunk.cells[row.firstCell + c];
            cells_.emplace_back(chunk.text.data() + offset, size);
        }
        ok = contract::readTextRecord(validator, cells_, layout.layout, arena, out, extras_, why);
    } else {
        ok = validator.validateRecord(text, layout.layout, arena, out, extras_, why);
    }
    if (!ok) {
        reject.code = std::string(reasonCode(why.reason));
        reject.message = why.message;
        reject.column = why.field.empty() ? std::string() : layout.column(why.field);
        reject.contractReason = true;
        reject.why = std::move(why);
        return false;
    }
    if (!time(layout, nowMs, out.eventTimeMs, reject))
        return false;
    if (!consent(out.consent, reject))
        return false;
    out.eventId = {};
    if (extras_.haveEventId) {
        std::string_view id;
        std::string number;
        using Kind = contract::RawScalar::Kind;
        if (extras_.eventId.kind == Kind::kString) {
            id = extras_.eventId.s;
        } else if (extras_.eventId.kind == Kind::kInt) {
            number = std::to_string(extras_.eventId.i);
            id = number;
        }
        if (id.empty() || id.size() > kMaxEventIdBytes) {
            reject.code = std::string(reasonCode(Reason::kBadMeta));
            reject.message = "the event id field '" + job_.eventIdField + "' must be text of 1 to " +
                             std::to_string(kMaxEventIdBytes) + " bytes";
            reject.column = job_.eventIdField;
            reject.contractReason = true;
            reject.why.reason = Reason::kBadMeta;
            reject.why.message = reject.message;
            return false;
        }
        out.eventId = arena.copy(id);
    }
    return true;
}

RowChecker::RowChecker(const JobSpec& job, std::shared_ptr<const contract::ContractSet> contracts,
                       contract::Limits limits, TimestampParser time)
    : validator_(std::move(contracts), limits), consent_(job.consent), parser_(job, consent_, std::move(time), limits.maxFutureMs)
{
}

Result<std::unique_ptr<RowChecker>> RowChecker::create(const JobSpec& job)
{
    auto set = contract::ContractSet::build(job.pipeline);
    if (!set)
        return set.status();
    contract::Limits limits;
    limits.maxEventBytes = job.input.maxRowBytes;
    auto time = TimestampParser::create(job.timestamp);
    if (!time)
        return time.status();
    return std::unique_ptr<RowChecker>(new RowChecker(job, std::move(*set), limits, std::move(*time)));
}

}  // namespace sluice::job
