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

TEST_CASE("Z85 matches ZeroMQ RFC 32's example and refuses what is not Z85", "[encoding]")
{
    const std::string bytes("\x86\x4F\xD2\x6F\xB5\x59\xF7\x5B", 8);
    CHECK(toZ85(bytes) == "HelloWorld");
    CHECK(fromZ85("HelloWorld") == bytes);
    CHECK_FALSE(fromZ85("Hello"
                        "Worl"));   // not a multiple of 5
    CHECK_FALSE(fromZ85("Hello Worl"));  // a space is not a Z85 character
    CHECK_FALSE(fromZ85("%%%%%"));       // 85^5 - 1 is more than 32 bits
}

TEST_CASE("a CURVE key is 40 Z85 characters or 64 hex digits of 32 bytes", "[encoding]")
{
    const std::string key(32, '\x5a');
    CHECK(curveKeyFromText(toZ85(key)) == key);
    CHECK(curveKeyFromText(toHex(key)) == key);
    CHECK_FALSE(curveKeyFromText(toZ85(key).substr(0, 35)));
    CHECK_FALSE(curveKeyFromText(toHex(key) + "00"));
    CHECK_FALSE(curveKeyFromText(std::string(40, ' ')));
}
