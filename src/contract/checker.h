// Checking values against a contract, whatever they were read from: the daemon's JSON events,
// a batch job's JSON lines or CSV rows. The readers (validator.h, text_record.h) find each
// field's value and hand it over as a RawScalar; the Checker applies every contract rule
// (types, PII types, patterns, string lengths, required and unknown fields, consent levels,
// event-time range) and says why a value is refused, with the same reason and message whatever
// the reader. Messages name fields and limits, never values.
//
// One Checker per thread (it holds PCRE2 match state).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "contract/pattern.h"
#include "core/arena.h"
#include "core/reason.h"
#include "core/spec.h"
#include "core/value.h"

namespace sluice::contract {

struct Rejection {
    Reason reason = Reason::kNotJson;
    std::string message;            // names fields and limits, never values
    int contract = -1;              // when the contract was recognised
    std::string eventId;            // when readable
    std::string field;              // the contract field at fault, when there is one
};

// A value as a reader found it, before the contract's type is applied.
struct RawScalar {
    enum class Kind : uint8_t { kString, kInt, kUint, kDouble, kBool, kNull, kArray, kObject };
    Kind kind = Kind::kNull;
    bool b = false;
    int64_t i = 0;      // kInt
    double d = 0;       // kDouble, and kUint as a double
    std::string_view s; // kString

    static RawScalar string(std::string_view v) { RawScalar r; r.kind = Kind::kString; r.s = v; return r; }
    static RawScalar integer(int64_t v) { RawScalar r; r.kind = Kind::kInt; r.i = v; return r; }
    static RawScalar bigUnsigned(double v) { RawScalar r; r.kind = Kind::kUint; r.d = v; return r; }
    static RawScalar real(double v) { RawScalar r; r.kind = Kind::kDouble; r.d = v; return r; }
    static RawScalar boolean(bool v) { RawScalar r; r.kind = Kind::kBool; r.b = v; return r; }
    static RawScalar of(Kind kind) { RawScalar r; r.kind = kind; return r; }

    // The JSON type name used in messages: "string", "integer", "number", ...
    std::string_view typeName() const;
};

// Whether `text` is a JSON number, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; `integer`
// says it has neither fraction nor exponent.
bool jsonNumber(std::string_view text, bool& integer);

// Sets `why` and returns false, so that readers can `return reject(...)`.
bool reject(Rejection& why, Reason reason, std::string message);
// A name from the input quoted for a message: shortened, control characters replaced.
std::string quoteName(std::string_view name);

class Checker {
public:
    // One scalar (or one element of an array field: `where` is then "element N of ") against
    // its field. On success `out` holds the value, strings copied into `arena`. Inline: it is
    // the per-field step of every event; the refusals are out of line.
    [[gnu::always_inline]] bool scalar(const FieldSpec& spec, const Pattern* pattern, const RawScalar& value,
                                       std::string_view where, Arena& arena, Value& out, Rejection& why)
    {
        using Kind = RawScalar::Kind;
        switch (spec.type) {
        case FieldType::kString:
            if (value.kind != Kind::kString)
                break;
            if (spec.maxLength && value.s.size() > spec.maxLength)
                return tooLong(spec, where, why);
            if (pattern) {
                const MatchResult m = matcher_.match(*pattern, value.s);
                if (m != MatchResult::kMatch)
                    return patternMismatch(spec, *pattern, m, where, why);
            }
            out = Value::ofString(arena.copy(value.s));
            return true;
        case FieldType::kInteger:
            if (value.kind == Kind::kInt) {
                out = Value::ofInt(value.i);
                return true;
            }
            if (value.kind == Kind::kDouble) {
                // JSON Schema counts 3.0 as an integer; so do we, within the exactly representable
                // range. The range test comes first: casting an out-of-range double is undefined.
                const double d = value.d;
                if (d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
                    d == static_cast<double>(static_cast<int64_t>(d))) {
                    out = Value::ofInt(static_cast<int64_t>(d));
                    return true;
                }
            }
            break;
        case FieldType::kNumber:
            if (value.kind == Kind::kInt) {
                out = Value::ofInt(value.i);
                return true;
            }
            if ((value.kind == Kind::kUint || value.kind == Kind::kDouble) && value.d - value.d == 0) {  // finite
                out = Value::ofReal(value.d);
                return true;
            }
            break;
        case FieldType::kBoolean:
            if (value.kind == Kind::kBool) {
                out = Value::ofBool(value.b);
                return true;
            }
            break;
        }
        return refuse(spec, value, where, why);
    }
    // An array field whose value is not an array.
    static bool notAnArray(const FieldSpec& spec, std::string_view got, Rejection& why);
    static bool unknownField(std::string_view name, const ContractSpec& contract, Rejection& why);
    static bool duplicateField(std::string_view name, Rejection& why);
    // Every required field has a value.
    static bool required(const ContractSpec& contract, std::span<const Value> fields, Rejection& why);
    // The event time against the contract's range: not before 1970, at most `maxFutureMs` ahead
    // of `nowMs`. `what` names the time in messages ("meta.event_time").
    static bool eventTime(int64_t ms, int64_t nowMs, int64_t maxFutureMs, std::string_view what, Rejection& why);

private:
    // Why `value` does not fit `spec` (scalar() found that it does not).
    static bool refuse(const FieldSpec& spec, const RawScalar& value, std::string_view where, Rejection& why);
    static bool wrongType(const FieldSpec& spec, std::string_view got, std::string_view where, Rejection& why);
    static bool tooLong(const FieldSpec& spec, std::string_view where, Rejection& why);
    static bool patternMismatch(const FieldSpec& spec, const Pattern& pattern, MatchResult m, std::string_view where,
                                Rejection& why);
    PatternMatcher matcher_;
};

}  // namespace sluice::contract
