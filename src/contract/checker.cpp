#include "contract/checker.h"

#include <cmath>

namespace sluice::contract {
namespace {

constexpr size_t kMaxNameInMessage = 64;

}  // namespace

std::string_view RawScalar::typeName() const
{
    switch (kind) {
    case Kind::kString: return "string";
    case Kind::kInt:
    case Kind::kUint: return "integer";
    case Kind::kDouble: return "number";
    case Kind::kBool: return "boolean";
    case Kind::kNull: return "null";
    case Kind::kArray: return "array";
    case Kind::kObject: return "object";
    }
    return "?";
}

bool jsonNumber(std::string_view t, bool& integer)
{
    size_t i = 0;
    auto digits = [&] {
        const size_t start = i;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9')
            ++i;
        return i - start;
    };
    if (i < t.size() && t[i] == '-')
        ++i;
    if (i < t.size() && t[i] == '0')
        ++i;
    else if (digits() == 0)
        return false;
    integer = true;
    if (i < t.size() && t[i] == '.') {
        ++i;
        integer = false;
        if (digits() == 0)
            return false;
    }
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
        ++i;
        integer = false;
        if (i < t.size() && (t[i] == '+' || t[i] == '-'))
            ++i;
        if (digits() == 0)
            return false;
    }
    return i == t.size();
}

bool reject(Rejection& why, Reason reason, std::string message)
{
    why.reason = reason;
    why.message = std::move(message);
    return false;
}

std::string quoteName(std::string_view name)
{
    std::string out = "'";
    for (size_t i = 0; i < name.size() && i < kMaxNameInMessage; ++i) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        out += (c < 0x20 || c == 0x7f || c == '\'') ? '?' : static_cast<char>(c);
    }
    if (name.size() > kMaxNameInMessage)
        out += "...";
    out += "'";
    return out;
}

bool Checker::wrongType(const FieldSpec& spec, std::string_view got, std::string_view where, Rejection& why)
{
    why.field = spec.name;
    if (spec.isPii())
        return reject(why, Reason::kPiiNotString,
                      std::string(where) + "PII field '" + spec.name + "' must be a string, got " + std::string(got));
    return reject(why, Reason::kWrongType,
                  std::string(where) + "field '" + spec.name + "' must be " + std::string(fieldTypeName(spec.type, false)) +
                      ", got " + std::string(got));
}

bool Checker::notAnArray(const FieldSpec& spec, std::string_view got, Rejection& why)
{
    why.field = spec.name;
    if (spec.isPii())
        return reject(why, Reason::kPiiNotString, "PII field '" + spec.name + "' must be an array of strings");
    return reject(why, Reason::kWrongType,
                  "field '" + spec.name + "' must be an " + std::string(fieldTypeName(spec.type, true)) + ", got " +
                      std::string(got));
}

bool Checker::tooLong(const FieldSpec& spec, std::string_view where, Rejection& why)
{
    why.field = spec.name;
    return reject(why, Reason::kTooLarge,
                  std::string(where) + "field '" + spec.name + "' is longer than " + std::to_string(spec.maxLength) +
                      " bytes");
}

bool Checker::patternMismatch(const FieldSpec& spec, const Pattern& pattern, MatchResult m, std::string_view where,
                              Rejection& why)
{
    why.field = spec.name;
    return reject(why, Reason::kPatternMismatch,
                  std::string(where) + "field '" + spec.name + "' does not match pattern " + pattern.source() +
                      (m == MatchResult::kLimit ? " (match limit reached)" : ""));
}

bool Checker::refuse(const FieldSpec& spec, const RawScalar& value, std::string_view where, Rejection& why)
{
    using Kind = RawScalar::Kind;
    // An integer beyond 64 bits: kUint below 2^64, a double beyond (as JSON rewriteOutOfRange
    // or a CSV cell gives it).
    const bool bigIntegral = value.kind == Kind::kDouble && std::fabs(value.d) >= 9223372036854775808.0 &&
                             value.d == std::floor(value.d);
    if (spec.type == FieldType::kInteger && (value.kind == Kind::kUint || (bigIntegral && !spec.isPii()))) {
        why.field = spec.name;
        return reject(why, Reason::kWrongType,
                      std::string(where) + "field '" + spec.name + "' is out of the 64-bit integer range");
    }
    if (spec.type == FieldType::kNumber && (value.kind == Kind::kUint || value.kind == Kind::kDouble)) {
        // Not finite: only text reads yield these (1e400 in a CSV cell).
        why.field = spec.name;
        return reject(why, Reason::kWrongType,
                      std::string(where) + "field '" + spec.name + "' is out of the range of a 64-bit floating-point number");
    }
    return wrongType(spec, value.typeName(), where, why);
}

bool Checker::unknownField(std::string_view name, const ContractSpec& contract, Rejection& why)
{
    return reject(why, Reason::kUnknownField, "field " + quoteName(name) + " is not in contract " + contract.ref);
}

bool Checker::duplicateField(std::string_view name, Rejection& why)
{
    return reject(why, Reason::kDuplicateField, "field " + quoteName(name) + " appears twice");
}

bool Checker::required(const ContractSpec& contract, std::span<const Value> fields, Rejection& why)
{
    for (size_t f = 0; f < contract.fields.size(); ++f) {
        if (contract.fields[f].required && !fields[f].present()) {
            why.field = contract.fields[f].name;
            return reject(why, Reason::kMissingField, "required field '" + contract.fields[f].name + "' is missing");
        }
    }
    return true;
}

bool Checker::eventTime(int64_t ms, int64_t nowMs, int64_t maxFutureMs, std::string_view what, Rejection& why)
{
    if (ms < 0)
        return reject(why, Reason::kTimestampOutOfRange, std::string(what) + " is negative");
    if (ms > nowMs + maxFutureMs)
        return reject(why, Reason::kTimestampOutOfRange,
                      std::string(what) + " is more than " + std::to_string(maxFutureMs / 1000) +
                          " s ahead of the host clock");
    return true;
}

}  // namespace sluice::contract
