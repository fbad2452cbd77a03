#include "core/time_format.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace sluice {
namespace {

std::optional<uint64_t> leadingNumber(std::string_view& text)
{
    uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr == text.data())
        return std::nullopt;
    text.remove_prefix(static_cast<size_t>(ptr - text.data()));
    return value;
}


bool allDigits(std::string_view s)
{
    if (s.empty())
        return false;
    for (char c : s)
        if (c < '0' || c > '9')
            return false;
    return true;
}

// Reads exactly `n` digits at `pos` into `out`.
bool digits(std::string_view s, size_t& pos, size_t n, int& out)
{
    if (pos + n > s.size())
        return false;
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
        char c = s[pos + i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    out = v;
    pos += n;
    return true;
}

bool expect(std::string_view s, size_t& pos, char c)
{
    if (pos < s.size() && s[pos] == c) {
        ++pos;
        return true;
    }
    return false;
}

}  // namespace

std::string isoTimeMs(int64_t epochMs)
{
    using namespace std::chrono;
    auto tp = sys_time<milliseconds>(milliseconds(epochMs));
    auto day = floor<days>(tp);
    year_month_day ymd(day);
    hh_mm_ss<milliseconds> hms(tp - day);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
    return buf;
}

std::optional<int64_t> parseDurationMs(std::string_view text)
{
    auto n = leadingNumber(text);
    if (!n)
        return std::nullopt;
    uint64_t scale;
    if (text.empty() || text == "ms")
        scale = 1;
    else if (text == "s")
        scale = 1000;
    else if (text == "m" || text == "min")
        scale = 60'000;
    else if (text == "h")
        scale = 3'600'000;
    else if (text == "d")
        scale = 86'400'000;
    else
        return std::nullopt;
    if (*n > static_cast<uint64_t>(INT64_MAX) / scale)
        return std::nullopt;
    return static_cast<int64_t>(*n * scale);
}

std::optional<uint64_t> parseSize(std::string_view text)
{
    auto n = leadingNumber(text);
    if (!n)
        return std::nullopt;
    uint64_t scale;
    if (text.empty() || text == "B")
        scale = 1;
    else if (text == "k" || text == "K" || text == "KiB")
        scale = 1024;
    else if (text == "M" || text == "MiB")
        scale = 1024 * 1024;
    else if (text == "G" || text == "GiB")
        scale = 1024ull * 1024 * 1024;
    else
        return std::nullopt;
    if (*n > UINT64_MAX / scale)
        return std::nullopt;
    return *n * scale;
}

std::optional<int64_t> parseTimeMs(std::string_view text)
{
    if (allDigits(text)) {
        if (text.size() > 15)
            return std::nullopt;
        int64_t v = 0;
        for (char c : text)
            v = v * 10 + (c - '0');
        return v;
    }
    size_t pos = 0;
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
    if (!digits(text, pos, 4, year) || !expect(text, pos, '-') || !digits(text, pos, 2, month) ||
        !expect(text, pos, '-') || !digits(text, pos, 2, day))
        return std::nullopt;
    if (pos < text.size() && (text[pos] == 'T' || text[pos] == ' ')) {
        ++pos;
        if (!digits(text, pos, 2, hour) || !expect(text, pos, ':') || !digits(text, pos, 2, minute))
            return std::nullopt;
        if (expect(text, pos, ':')) {
            if (!digits(text, pos, 2, second))
                return std::nullopt;
            if (expect(text, pos, '.')) {
                int scale = 100;
                size_t start = pos;
                while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
                    millis += (text[pos] - '0') * scale;
                    scale /= 10;
                    ++pos;
                }
                if (pos == start)
                    return std::nullopt;
            }
        }
    }
    int64_t offsetMinutes = 0;
    if (pos < text.size()) {
        if (text[pos] == 'Z' && pos + 1 == text.size()) {
            ++pos;
        } else if (text[pos] == '+' || text[pos] == '-') {
            const int sign = text[pos] == '-' ? -1 : 1;
            ++pos;
            int oh = 0, om = 0;
            if (!digits(text, pos, 2, oh))
                return std::nullopt;
            expect(text, pos, ':');
            if (!digits(text, pos, 2, om) || oh > 23 || om > 59)
                return std::nullopt;
            offsetMinutes = sign * (oh * 60 + om);
        }
        if (pos != text.size())
            return std::nullopt;
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return std::nullopt;
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    const time_t t = timegm(&tm);
    if (tm.tm_mday != day)  // timegm normalised an impossible date such as 02-30
        return std::nullopt;
    return (static_cast<int64_t>(t) - offsetMinutes * 60) * 1000 + millis;
}

}  // namespace sluice
