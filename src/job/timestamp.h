// A record's time from its timestamp column: ISO-8601, epoch seconds or milliseconds, or a
// strftime-style pattern (glibc strptime, C locale), in a time zone of the system's tz database
// (IANA names, through Howard Hinnant's date/tz) when the text carries no offset.
//
// Local times that a daylight-saving change makes ambiguous (a fold: the hour repeated in
// autumn) take the earlier instant by default, or the later one, or are refused; local times
// that do not exist (a gap: the hour skipped in spring) are moved forward by the length of the
// gap by default (02:30 in a 02:00->03:00 gap is read as 03:30), or refused.
//
// A parser keeps a small cache of the zone's current rule: one per thread (copy it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace date {
class time_zone;
}

namespace sluice::job {

enum class TimeFormat : uint8_t { kIso8601, kEpochSeconds, kEpochMillis, kPattern };
enum class FoldChoice : uint8_t { kEarlier, kLater, kReject };
enum class GapChoice : uint8_t { kShiftForward, kReject };

struct TimestampSpec {
    std::string column;                  // the input column (CSV header name, JSONL key)
    TimeFormat format = TimeFormat::kIso8601;
    std::string pattern;                 // kPattern: "%m/%d/%Y %H:%M"
    std::string zone = "UTC";            // for times without an offset
    FoldChoice fold = FoldChoice::kEarlier;
    GapChoice gap = GapChoice::kShiftForward;
};

class TimestampParser {
public:
    // Finds the zone in the tz database; checks the pattern's conversions.
    static Result<TimestampParser> create(const TimestampSpec& spec);

    // Epoch milliseconds of `text`; false with the reason in `why` (which never quotes the text).
    bool parse(std::string_view text, int64_t& ms, std::string& why);
    // A JSON number in an epoch format.
    bool fromNumber(double value, int64_t& ms, std::string& why) const;

    const TimestampSpec& spec() const { return spec_; }

private:
    TimestampParser() = default;
    bool local(int64_t localMs, int64_t& ms, std::string& why);
    bool iso(std::string_view text, int64_t& ms, std::string& why);
    bool pattern(std::string_view text, int64_t& ms, std::string& why);

    TimestampSpec spec_;
    const date::time_zone* zone_ = nullptr;  // null: UTC
    bool patternHasOffset_ = false;
    // Local times in [cacheFromMs_, cacheToMs_) map to UTC with this offset and nothing else.
    int64_t cacheFromMs_ = 0;
    int64_t cacheToMs_ = 0;
    int64_t cacheOffsetMs_ = 0;
};

}  // namespace sluice::job
