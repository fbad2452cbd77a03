#include "transform/key_policy.h"

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
    out.push_back('\0');
    out += isoTimeMs(dayStartMs(eventTimeMs)).substr(0, 10);
}

privacy::KeyTerm DailyKeys::term(int64_t eventTimeMs, int64_t nowMs) const
{
    const int64_t start = dayStartMs(eventTimeMs);
    // The record's own time decides; the key is recorded as made now and expiring with its day.
    return {eventTimeMs, nowMs, start + kDayMs};
}

}  // namespace sluice::transform
