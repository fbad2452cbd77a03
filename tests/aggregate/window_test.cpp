#include <catch2/catch.hpp>

#include "aggregate/window.h"
#include "fixtures.h"

using namespace sluice::aggregate;
using namespace sluice::aggregate::testing;

static_assert(windowStart(-1, kSecond) == -kSecond);
static_assert(windowEnd(-1, kSecond) == 0);
static_assert(windowStart(kMinEventTimeMs - kMaxLatenessMs, kMaxWindowMs) <= kMinEventTimeMs - kMaxLatenessMs);

TEST_CASE("tumbling windows are floor-aligned to the epoch, also before 1970", "[window]")
{
    struct Case {
        int64_t time;
        int64_t width;
        int64_t start;
    };
    const Case cases[] = {
        {0, kSecond, 0},
        {1, kSecond, 0},
        {999, kSecond, 0},
        {1000, kSecond, 1000},
        {-1, kSecond, -1000},
        {-999, kSecond, -1000},
        {-1000, kSecond, -1000},
        {-1001, kSecond, -2000},
        {1763712000123, kSecond, 1763712000000},
        {1763712000123, kMinute, 1763712000000},
        {1763712059999, kMinute, 1763712000000},
        {1763712060000, kMinute, 1763712060000},
        {-1, kMinute, -kMinute},
        {-kMinute - 1, kMinute, -2 * kMinute},
        {1763712000123, kHour, 1763712000000},
        {1763715599999, kHour, 1763712000000},
        {-1, kHour, -kHour},
        {1763712000123, kDay, 1763683200000},  // 2025-11-21T00:00:00Z
        {-1, kDay, -kDay},
        {-kDay, kDay, -kDay},
        {-kDay - 1, kDay, -2 * kDay},
        {7, 3, 6},
        {-7, 3, -9},
        {kMaxEventTimeMs, kMaxWindowMs, kMaxEventTimeMs},
        {kMinEventTimeMs, kMaxWindowMs, kMinEventTimeMs},
        {kMinEventTimeMs + 1, kMaxWindowMs, kMinEventTimeMs},
        {kMinEventTimeMs - 1, kMaxWindowMs, kMinEventTimeMs - kMaxWindowMs},
    };
    for (const Case& c : cases) {
        INFO("time " << c.time << " width " << c.width);
        CHECK(windowStart(c.time, c.width) == c.start);
        CHECK(windowEnd(c.time, c.width) == c.start + c.width);
        CHECK(c.start <= c.time);
        CHECK(c.time < c.start + c.width);
    }
}
