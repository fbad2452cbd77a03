#include <catch2/catch.hpp>

#include "core/encoding.h"

using namespace sluice;

TEST_CASE("base64 matches RFC 4648 test vectors", "[encoding]")
{
    // RFC 4648 section 10.
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (auto [plain, encoded] : vectors) {
        CHECK(toBase64(plain) == encoded);
        auto back = fromBase64(encoded);
        REQUIRE(back);
        CHECK(*back == plain);
    }
}

TEST_CASE("base64 decoding is strict", "[encoding]")
{
    CHECK_FALSE(fromBase64("Zg="));      // length not a multiple of 4
    CHECK_FALSE(fromBase64("Z==="));     // padding too early
    CHECK_FALSE(fromBase64("Zm9v Zg=")); // whitespace
    CHECK_FALSE(fromBase64("Zm=v"));     // padding in the middle
    CHECK_FALSE(fromBase64("Zg==Zg==")); // padding before the end
    CHECK_FALSE(fromBase64("Zm9-"));     // URL-safe alphabet is not accepted
}

TEST_CASE("base64 round-trips every byte value", "[encoding]")
{
    std::string all;
    for (int i = 0; i < 256; ++i)
        all += static_cast<char>(i);
    for (size_t len = 0; len <= all.size(); len += 7) {
        std::string part = all.substr(0, len);
        auto back = fromBase64(toBase64(part));
        REQUIRE(back);
        CHECK(*back == part);
    }
}

TEST_CASE("hex encodes lowercase and decodes either case", "[encoding]")
{
    CHECK(toHex(std::string("\x00\x01\xab\xff", 4)) == "0001abff");
    auto back = fromHex("0001ABff");
    REQUIRE(back);
    CHECK(*back == std::string("\x00\x01\xab\xff", 4));
    CHECK_FALSE(fromHex("abc"));
    CHECK_FALSE(fromHex("zz"));
}
