#include <catch2/catch.hpp>

#include "core/time_format.h"

using namespace sluice;

TEST_CASE("ISO-8601 times are UTC with milliseconds", "[time]")
{
    CHECK(isoTimeMs(0) == "1970-01-01T00:00:00.000Z");
    CHECK(isoTimeMs(1763712000123) == "2025-11-21T08:00:00.123Z");
    CHECK(isoTimeMs(951782400000) == "2000-02-29T00:00:00.000Z");
}

TEST_CASE("durations and sizes parse with units", "[time]")
{
    CHECK(parseDurationMs("200ms") == 200);
    CHECK(parseDurationMs("200") == 200);
    CHECK(parseDurationMs("30s") == 30'000);
    CHECK(parseDurationMs("5m") == 300'000);
    CHECK(parseDurationMs("1h") == 3'600'000);
    CHECK(parseDurationMs("1d") == 86'400'000);
    CHECK_FALSE(parseDurationMs("1w"));
    CHECK_FALSE(parseDurationMs("ms"));
    CHECK_FALSE(parseDurationMs("-5s"));
    CHECK(parseSize("8M") == 8u * 1024 * 1024);
    CHECK(parseSize("64k") == 65536u);
    CHECK(parseSize("100") == 100u);
    CHECK_FALSE(parseSize("8X"));
}

TEST_CASE("times from text: ISO-8601 or epoch milliseconds", "[time]")
{
    CHECK(parseTimeMs("1763712000123") == 1763712000123);
    CHECK(parseTimeMs("2025-11-21") == 1763683200000);
    CHECK(parseTimeMs("2025-11-21T08:00:00.123Z") == 1763712000123);
    CHECK(parseTimeMs("2025-11-21T08:00") == 1763712000000);
    CHECK(parseTimeMs("2025-11-21 09:00:00+01:00") == 1763712000000);
    CHECK(parseTimeMs("2025-11-21T07:30:00-0030") == 1763712000000);
    CHECK(parseTimeMs("2024-02-29") == 1709164800000);
    CHECK_FALSE(parseTimeMs("2025-02-30"));
    CHECK_FALSE(parseTimeMs("2025-13-01"));
    CHECK_FALSE(parseTimeMs("yesterday"));
    CHECK_FALSE(parseTimeMs("2025-11-21T08"));
    CHECK_FALSE(parseTimeMs("2025-11-21Z "));
    CHECK_FALSE(parseTimeMs(""));
}
