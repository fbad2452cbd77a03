#include <catch2/catch.hpp>

#include <set>

#include "privacy/random.h"

using namespace sluice;
using namespace sluice::privacy;

TEST_CASE("uuidV4 is lowercase RFC 4122 version 4 text", "[random]")
{
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto uuid = uuidV4();
        REQUIRE(uuid);
        const std::string& u = *uuid;
        REQUIRE(u.size() == 36);
        for (size_t j = 0; j < u.size(); ++j) {
            if (j == 8 || j == 13 || j == 18 || j == 23)
                CHECK(u[j] == '-');
            else
                CHECK(std::string_view("0123456789abcdef").find(u[j]) != std::string_view::npos);
        }
        CHECK(u[14] == '4');
        CHECK(std::string_view("89ab").find(u[19]) != std::string_view::npos);
        seen.insert(u);
    }
    CHECK(seen.size() == 1000);
}

TEST_CASE("randomKeyId is nonzero and randomBytes has the asked size", "[random]")
{
    std::set<uint32_t> ids;
    for (int i = 0; i < 1000; ++i) {
        auto id = randomKeyId();
        REQUIRE(id);
        CHECK(*id != 0);
        ids.insert(*id);
    }
    CHECK(ids.size() > 990);
    auto a = randomBytes(64);
    auto b = randomBytes(64);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->size() == 64);
    CHECK_FALSE(secretEquals(*a, *b));
    CHECK(randomBytes(0)->empty());
}
