#include "core/time_format.h"

#include <charconv>
#include <chrono>
#include <cstdio>

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

}  // namespace sluice
