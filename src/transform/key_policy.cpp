#include "transform/key_policy.h"

#include <date/date.h>

#include "core/time_format.h"

namespace sluice::transform {

int64_t DailyKeys::dayStartMs(int64_t eventTimeMs)
{
    int64_t rem = eventTimeMs % kDayMs;
    if (rem < 0)
        rem += kDayMs;
    return eventTimeMs - rem;
}

void DailyKeys::appendLookupSuffix(int64_t eventTimeMs, std::string& out) const
{
    // "YYYY-MM-DD" of the UTC day, as isoTimeMs() writes it, without formatting a whole time
    // for every event: the civil date from Howard Hinnant's date library.
    const date::year_month_day ymd{date::sys_days{date::days{dayStartMs(eventTimeMs) / kDayMs}}};
    const int year = static_cast<int>(ymd.year());
    if (year < 0 || year > 9999) {  // beyond four digits: as isoTimeMs writes it
        out.push_back('\0');
        out += isoTimeMs(dayStartMs(eventTimeMs)).substr(0, 10);
        return;
    }
    const unsigned month = static_cast<unsigned>(ymd.month());
    const unsigned day = static_cast<unsigned>(ymd.day());
    const char text[11] = {'\0',
                           static_cast<char>('0' + year / 1000),
                           static_cast<char>('0' + year / 100 % 10),
                           static_cast<char>('0' + year / 10 % 10),
                           static_cast<char>('0' + year % 10),
                           '-',
                           static_cast<char>('0' + month / 10),
                           static_cast<char>('0' + month % 10),
                           '-',
                           static_cast<char>('0' + day / 10),
                           static_cast<char>('0' + day % 10)};
    out.append(text, sizeof text);
}

privacy::KeyTerm DailyKeys::term(int64_t eventTimeMs, int64_t nowMs) const
{
    const int64_t start = dayStartMs(eventTimeMs);
    // The record's own time decides; the key is recorded as made now and expiring with its day.
    return {eventTimeMs, nowMs, start + kDayMs};
}

}  // namespace sluice::transform
