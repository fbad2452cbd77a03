// Event-time window arithmetic. Tumbling windows are aligned to the Unix epoch: window k covers
// [k*width, (k+1)*width). Sliding windows start on the grid of their slide (windowStart(t, slide)
// is the newest one holding t) and are `size` long.
#pragma once

#include <cstdint>

namespace sluice::aggregate {

// Event times the aggregate stage accepts: about +-146 million years. Inside this range, and
// with widths and lateness up to kMaxWindowMs / kMaxLatenessMs, no window or watermark
// arithmetic can overflow. The contract stage rejects event times far narrower than this.
inline constexpr int64_t kMinEventTimeMs = -(int64_t{1} << 62);
inline constexpr int64_t kMaxEventTimeMs = int64_t{1} << 62;
inline constexpr int64_t kMaxWindowMs = int64_t{1} << 40;    // about 34.8 years
inline constexpr int64_t kMaxLatenessMs = int64_t{1} << 40;
// Sliding windows: an event falls in size / slide windows, at most this many.
inline constexpr int64_t kMaxWindowsPerEvent = 4096;

// floor(eventTimeMs / widthMs) * widthMs, also for negative times.
// Requires widthMs in [1, kMaxWindowMs] and eventTimeMs in [kMinEventTimeMs - kMaxLatenessMs,
// kMaxEventTimeMs].
constexpr int64_t windowStart(int64_t eventTimeMs, int64_t widthMs)
{
    int64_t rem = eventTimeMs % widthMs;  // truncated: negative for negative times
    if (rem < 0)
        rem += widthMs;
    return eventTimeMs - rem;
}

// The first instant after the window that holds eventTimeMs (same requirements).
constexpr int64_t windowEnd(int64_t eventTimeMs, int64_t widthMs)
{
    return windowStart(eventTimeMs, widthMs) + widthMs;
}

}  // namespace sluice::aggregate
