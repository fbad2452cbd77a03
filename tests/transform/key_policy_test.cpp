// DailyKeys' lookup suffix is part of every job group's stored lookups: it must stay byte for
// byte what it was ("\0" + the ISO-8601 date of the UTC day), whatever way it is computed.
#include <catch2/catch.hpp>

#include <string>

#include "core/time_format.h"
#include "transform/key_policy.h"

using namespace sluice;
using namespace sluice::transform;

TEST_CASE("DailyKeys: the lookup suffix is the UTC day's ISO date", "[transform][keys]")
{
    DailyKeys policy;
    constexpr int64_t kDay = DailyKeys::kDayMs;
    // Every day from 1900 to 2100, at its first and last millisecond and somewhere inside.
    for (int64_t day = -25'567; day <= 47'482; ++day) {
        for (int64_t offset : {int64_t{0}, kDay / 3 + 17, kDay - 1}) {
            const int64_t t = day * kDay + offset;
            std::string suffix;
            policy.appendLookupSuffix(t, suffix);
            std::string expected(1, '\0');
            expected.append(isoTimeMs(day * kDay), 0, 10);
            if (suffix != expected)
                FAIL("day " << day << ": " << suffix.substr(1) << " != " << expected.substr(1));
        }
    }
    std::string suffix;
    policy.appendLookupSuffix(1'795'219'200'000, suffix);  // 2026-11-21T00:00:00Z
    CHECK(suffix == std::string("\0" "2026-11-21", 11));
}

TEST_CASE("DailyKeys: a key's term is its record's UTC day", "[transform][keys]")
{
    DailyKeys policy;
    const privacy::KeyTerm term = policy.term(1'795'219'200'000 + 5'000, 42);
    CHECK(term.nowMs == 1'795'219'200'000 + 5'000);
    CHECK(term.createdAtMs == 42);
    CHECK(term.expiresAtMs == 1'795'219'200'000 + DailyKeys::kDayMs);
    CHECK(DailyKeys::dayStartMs(-1) == -DailyKeys::kDayMs);
}
