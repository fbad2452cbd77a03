#include "job/timestamp.h"

#include <date/tz.h>
#include <time.h>

#include <cmath>
#include <cstring>
#include <exception>

namespace sluice::job {
namespace {

constexpr int64_t kDayMs = 86'400'000;
// Offsets never change twice within this margin of a transition, so local times further than
// that from the ends of a rule's range map with its offset alone.
constexpr int64_t kCacheMarginMs = kDayMs;

bool digits(std::string_view t, size_t& pos, size_t n, int& out)
{
    if (pos + n > t.size())
        return false;
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
        const char c = t[pos + i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    pos += n;
    out = v;
    return true;
}

int64_t daysFromCivil(int y, unsigned m, unsigned d)
{
    return date::sys_days(date::year(y) / static_cast<int>(m) / static_cast<int>(d)).time_since_epoch().count();
}

bool validDate(int y, int m, int d)
{
    return date::year_month_day(date::year(y), date::month(static_cast<unsigned>(m)), date::day(static_cast<unsigned>(d))).ok();
}

bool parseInteger(std::string_view t, int64_t& out, bool& fraction, double& value)
{
    size_t i = 0;
    const bool negative = !t.empty() && t[0] == '-';
    if (negative)
        ++i;
    if (i == t.size())
        return false;
    int64_t v = 0;
    size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (t[i] - '0');
        ++i;
    }
    if (i == start)
        return false;
    fraction = false;
    value = static_cast<double>(v);
    if (i < t.size() && t[i] == '.') {
        ++i;
        double scale = 0.1;
        const size_t fracStart = i;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
            value += (t[i] - '0') * scale;
            scale /= 10;
            ++i;
        }
        if (i == fracStart)
            return false;
        fraction = true;
    }
    if (i != t.size())
        return false;
    out = negative ? -v : v;
    if (negative)
        value = -value;
    return true;
}

}  // namespace

Result<TimestampParser> TimestampParser::create(const TimestampSpec& spec)
{
    TimestampParser p;
    p.spec_ = spec;
    if (spec.zone != "UTC" && spec.zone != "Etc/UTC") {
        try {
            p.zone_ = date::locate_zone(spec.zone);
        } catch (const std::exception&) {
            return Status::invalid("time zone '" + spec.zone +
                                   "' is not in the system's tz database (an IANA name such as Europe/Amsterdam)");
        }
    }
    if (spec.format == TimeFormat::kPattern) {
        if (spec.pattern.empty() || spec.pattern.find('%') == std::string::npos)
            return Status::invalid("a timestamp pattern needs conversions such as %Y-%m-%d %H:%M:%S");
        for (size_t i = 0; i + 1 < spec.pattern.size(); ++i) {
            if (spec.pattern[i] != '%')
                continue;
            const char c = spec.pattern[++i];
            if (c == 'z')
                p.patternHasOffset_ = true;
            if (std::strchr("YmdHMSyjbBheIpzTDRFne%t", c) == nullptr)
                return Status::invalid(std::string("timestamp pattern: %") + c +
                                       " is not supported (use %Y %m %d %e %j %b %B %H %I %p %M %S %y %z %T %D %R %F %%)");
        }
    }
    return p;
}

bool TimestampParser::local(int64_t localMs, int64_t& ms, std::string& why)
{
    if (!zone_) {
        ms = localMs;
        return true;
    }
    if (localMs >= cacheFromMs_ && localMs < cacheToMs_) {
        ms = localMs - cacheOffsetMs_;
        return true;
    }
    using namespace std::chrono;
    const int64_t secs = localMs >= 0 ? localMs / 1000 : -((-localMs + 999) / 1000);
    const int64_t fraction = localMs - secs * 1000;
    const date::local_seconds t{seconds(secs)};
    const date::local_info info = zone_->get_info(t);
    int64_t offsetMs = 0;
    switch (info.result) {
    case date::local_info::unique: {
        offsetMs = duration_cast<milliseconds>(info.first.offset).count();
        const int64_t begin = duration_cast<milliseconds>(info.first.begin.time_since_epoch()).count();
        const int64_t end = duration_cast<milliseconds>(info.first.end.time_since_epoch()).count();
        // Rules at the ends of time have begin/end at the limits; keep the arithmetic in range.
        cacheFromMs_ = begin > INT64_MIN / 2 ? begin + offsetMs + kCacheMarginMs : INT64_MIN / 2;
        cacheToMs_ = end < INT64_MAX / 2 ? end + offsetMs - kCacheMarginMs : INT64_MAX / 2;
        cacheOffsetMs_ = offsetMs;
        break;
    }
    case date::local_info::ambiguous:
        if (spec_.fold == FoldChoice::kReject) {
            why = "the local time occurs twice in " + spec_.zone + " (a daylight-saving fold) and timestamp.fold is reject";
            return false;
        }
        offsetMs = duration_cast<milliseconds>(spec_.fold == FoldChoice::kEarlier ? info.first.offset : info.second.offset)
                       .count();
        break;
    case date::local_info::nonexistent:
        if (spec_.gap == GapChoice::kReject) {
            why = "the local time does not exist in " + spec_.zone + " (a daylight-saving gap) and timestamp.gap is reject";
            return false;
        }
        // With the offset in force before the gap the instant lands after it, moved forward by
        // the gap's length.
        offsetMs = duration_cast<milliseconds>(info.first.offset).count();
        break;
    }
    ms = secs * 1000 + fraction - offsetMs;
    return true;
}

bool TimestampParser::iso(std::string_view t, int64_t& ms, std::string& why)
{
    size_t pos = 0;
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    int64_t millis = 0;
    if (!digits(t, pos, 4, year) || pos >= t.size() || t[pos++] != '-' || !digits(t, pos, 2, month) ||
        pos >= t.size() || t[pos++] != '-' || !digits(t, pos, 2, day)) {
        why = "not an ISO-8601 date (YYYY-MM-DD, then optionally THH:MM[:SS[.fff]] and Z or an offset)";
        return false;
    }
    if (!validDate(year, month, day)) {
        why = "not a valid calendar date";
        return false;
    }
    if (pos < t.size() && (t[pos] == 'T' || t[pos] == 't' || t[pos] == ' ')) {
        ++pos;
        if (!digits(t, pos, 2, hour) || pos >= t.size() || t[pos++] != ':' || !digits(t, pos, 2, minute)) {
            why = "not an ISO-8601 time of day (HH:MM[:SS[.fff]])";
            return false;
        }
        if (pos < t.size() && t[pos] == ':') {
            ++pos;
            if (!digits(t, pos, 2, second)) {
                why = "not an ISO-8601 time of day (HH:MM[:SS[.fff]])";
                return false;
            }
            if (pos < t.size() && (t[pos] == '.' || t[pos] == ',')) {
                ++pos;
                int64_t scale = 100;
                const size_t start = pos;
                while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
                    millis += (t[pos] - '0') * scale;  // digits beyond milliseconds are dropped
                    scale /= 10;
                    ++pos;
                }
                if (pos == start) {
                    why = "a decimal point without digits in the seconds";
                    return false;
                }
            }
        }
        if (hour > 23 || minute > 59 || second > 60) {
            why = "not a valid time of day";
            return false;
        }
        second = second == 60 ? 59 : second;  // a leap second is read as the second before it
    }
    const int64_t localMs =
        ((daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 24 + hour) * 60 + minute) *
            60'000 +
        second * 1000 + millis;
    if (pos == t.size())
        return local(localMs, ms, why);
    if ((t[pos] == 'Z' || t[pos] == 'z') && pos + 1 == t.size()) {
        ms = localMs;
        return true;
    }
    if (t[pos] == '+' || t[pos] == '-') {
        const int sign = t[pos] == '-' ? -1 : 1;
        ++pos;
        int oh = 0, om = 0;
        bool ok = digits(t, pos, 2, oh);
        if (ok && pos < t.size()) {
            if (t[pos] == ':')
                ++pos;
            ok = digits(t, pos, 2, om);
        }
        if (ok && pos == t.size() && oh <= 23 && om <= 59) {
            ms = localMs - sign * (oh * 60 + om) * 60'000LL;
            return true;
        }
    }
    why = "not an ISO-8601 offset (Z, +HH:MM, +HHMM or +HH) after the time";
    return false;
}

bool TimestampParser::pattern(std::string_view t, int64_t& ms, std::string& why)
{
    char buffer[128];
    if (t.size() >= sizeof buffer) {
        why = "longer than any time the pattern describes";
        return false;
    }
    std::memcpy(buffer, t.data(), t.size());
    buffer[t.size()] = '\0';
    struct tm tm{};
    tm.tm_mday = 1;
    const char* end = strptime(buffer, spec_.pattern.c_str(), &tm);
    if (!end || *end != '\0') {
        why = "does not match the pattern " + spec_.pattern;
        return false;
    }
    const int year = tm.tm_year + 1900;
    if (!validDate(year, tm.tm_mon + 1, tm.tm_mday)) {
        why = "not a valid calendar date";
        return false;
    }
    const int64_t localMs =
        ((daysFromCivil(year, static_cast<unsigned>(tm.tm_mon + 1), static_cast<unsigned>(tm.tm_mday)) * 24 + tm.tm_hour) *
             60 +
         tm.tm_min) *
            60'000 +
        std::min(tm.tm_sec, 59) * 1000LL;
    if (patternHasOffset_) {
        ms = localMs - tm.tm_gmtoff * 1000;
        return true;
    }
    return local(localMs, ms, why);
}

bool TimestampParser::parse(std::string_view text, int64_t& ms, std::string& why)
{
    switch (spec_.format) {
    case TimeFormat::kIso8601: return iso(text, ms, why);
    case TimeFormat::kPattern: return pattern(text, ms, why);
    case TimeFormat::kEpochSeconds:
    case TimeFormat::kEpochMillis: {
        int64_t whole = 0;
        bool fraction = false;
        double value = 0;
        if (!parseInteger(text, whole, fraction, value)) {
            why = spec_.format == TimeFormat::kEpochSeconds ? "not a number of seconds since the epoch"
                                                            : "not a number of milliseconds since the epoch";
            return false;
        }
        if (!fraction) {
            const int64_t scale = spec_.format == TimeFormat::kEpochSeconds ? 1000 : 1;
            if (whole > INT64_MAX / 1000 || whole < INT64_MIN / 1000) {
                why = "out of range";
                return false;
            }
            ms = whole * scale;
            return true;
        }
        return fromNumber(value, ms, why);
    }
    }
    return false;
}

bool TimestampParser::fromNumber(double value, int64_t& ms, std::string& why) const
{
    if (spec_.format != TimeFormat::kEpochSeconds && spec_.format != TimeFormat::kEpochMillis) {
        why = "a number, but timestamp.format expects text";
        return false;
    }
    const double scaled = spec_.format == TimeFormat::kEpochSeconds ? value * 1000.0 : value;
    if (!std::isfinite(scaled) || std::fabs(scaled) > 9.0e15) {
        why = "out of range";
        return false;
    }
    ms = static_cast<int64_t>(std::floor(scaled));
    return true;
}

}  // namespace sluice::job
