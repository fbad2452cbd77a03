// Why an event was not committed. Every reason has a stable snake_case code: it is what the
// dead-letter table stores, what acknowledged producers receive, and the `reason` label of the
// rejection metric. docs/protocol.md lists them; never renumber or rename one.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice {

enum class Reason : uint8_t {
    kNotJson = 0,          // the text is not JSON
    kNotObject,            // JSON, but not an object
    kBadUtf8,              // invalid UTF-8 anywhere in the event
    kTooLarge,             // event, message or field larger than its limit
    kTooDeep,              // nesting deeper than the limit
    kUnknownContract,      // meta.contract names no loaded contract
    kBadMeta,              // meta missing or malformed
    kMissingField,         // a required field is absent
    kWrongType,            // a field has the wrong JSON type
    kPatternMismatch,      // a string does not match its contract pattern
    kUnknownField,         // a field the contract does not declare
    kPiiNotString,         // a PII field holds something other than a string (or array of strings)
    kBadConsent,           // meta.consent missing or not a list of purpose levels
    kTimestampOutOfRange,  // meta.event_time negative or too far in the future
    kDuplicateField,       // the same key twice in one object
    kBadRequest,           // an acknowledged request whose envelope is malformed
    kDuplicate,            // a retried request that was already committed (counted, not stored)
};

inline constexpr size_t kReasonCount = static_cast<size_t>(Reason::kDuplicate) + 1;

inline constexpr std::array<std::string_view, kReasonCount> kReasonCodes = {
    "not_json",       "not_object",    "bad_utf8",         "too_large",        "too_deep",
    "unknown_contract", "bad_meta",    "missing_field",    "wrong_type",       "pattern_mismatch",
    "unknown_field",  "pii_not_string", "bad_consent",     "timestamp_out_of_range",
    "duplicate_field", "bad_request",  "duplicate",
};

inline constexpr std::string_view reasonCode(Reason r) { return kReasonCodes[static_cast<size_t>(r)]; }

inline std::optional<Reason> reasonFromCode(std::string_view code)
{
    for (size_t i = 0; i < kReasonCount; ++i)
        if (kReasonCodes[i] == code)
            return static_cast<Reason>(i);
    return std::nullopt;
}

}  // namespace sluice
