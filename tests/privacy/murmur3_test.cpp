#include <catch2/catch.hpp>

#include <cinttypes>
#include <cstdio>
#include <vector>

#include "privacy/murmur3.h"

using namespace sluice::privacy;

TEST_CASE("MurmurHash3_x64_128 reference values", "[murmur3]")
{
    // Guava's Murmur3Hash128Test.testKnownValues (google/guava,
    // guava-tests/test/com/google/common/hash/Murmur3Hash128Test.java): (seed, h1, h2, input).
    struct Known {
        uint32_t seed;
        uint64_t h1;
        uint64_t h2;
        const char* input;
    };
    const Known known[] = {
        {0, 0x629942693e10f867ULL, 0x92db0b82baeb5347ULL, "hell"},
        {1, 0xa78ddff5adae8d10ULL, 0x128900ef20900135ULL, "hello"},
        {2, 0x8a486b23f422e826ULL, 0xf962a2c58947765fULL, "hello "},
        {3, 0x2ea59f466f6bed8cULL, 0xc610990acc428a17ULL, "hello w"},
        {4, 0x79f6305a386c572cULL, 0x46305aed3483b94eULL, "hello wo"},
        {5, 0xc2219d213ec1f1b5ULL, 0xa1d8e2e0a52785bdULL, "hello wor"},
        {0, 0xe34bbc7bbc071b6cULL, 0x7a433ca9c49a9347ULL, "The quick brown fox jumps over the lazy dog"},
        {0, 0x658ca970ff85269aULL, 0x43fee3eaa68e5c3eULL, "The quick brown fox jumps over the lazy cog"},
    };
    for (const auto& k : known) {
        INFO(k.input << " seed " << k.seed);
        CHECK(murmur3x64_128(k.input, k.seed) == Murmur3Hash{k.h1, k.h2});
    }
    // Empty input with seed 0: every step keeps zero, and fmix(0) == 0.
    CHECK(murmur3x64_128("", 0) == Murmur3Hash{0, 0});
    CHECK_FALSE(murmur3x64_128("", 1) == Murmur3Hash{0, 0});
}

TEST_CASE("MurmurHash3_x64_128 SMHasher verification value", "[murmur3]")
{
    // SMHasher's VerificationTest (also in Guava's HashTestUtils.verifyHashFunction): hash the
    // keys {}, {0}, {0,1}, ..., {0..254} with seed 256 - length, concatenate the 16-byte
    // little-endian results, hash that with seed 0; the first 4 bytes, little-endian, are
    // 0x6384BA69 for MurmurHash3_x64_128.
    std::string key;
    std::string hashes;
    for (int i = 0; i < 256; ++i) {
        Murmur3Hash h = murmur3x64_128(key, static_cast<uint32_t>(256 - i));
        for (int b = 0; b < 8; ++b)
            hashes += static_cast<char>(h.h1 >> (8 * b));
        for (int b = 0; b < 8; ++b)
            hashes += static_cast<char>(h.h2 >> (8 * b));
        key += static_cast<char>(i);
    }
    Murmur3Hash final = murmur3x64_128(hashes, 0);
    CHECK(static_cast<uint32_t>(final.h1) == 0x6384BA69u);
}

TEST_CASE("murmur3 mask: hex halves without leading zeros over seed + value", "[murmur3]")
{
    // The Guava input split between seed and value hashes the same bytes.
    CHECK(murmur3Mask("The quick brown fox ", "jumps over the lazy dog") == "e34bbc7bbc071b6c7a433ca9c49a9347");
    CHECK(murmur3Mask("", "") == "00");

    // Search for values whose halves start with a zero nibble; those masks are shorter than 32
    // characters and must equal printf's %" PRIx64 "%" PRIx64 ", which drops leading zeros.
    int found = 0;
    for (int i = 0; i < 10000 && found < 5; ++i) {
        std::string value = "customer-" + std::to_string(i);
        Murmur3Hash h = murmur3x64_128("seed" + value, 0);
        if (h.h1 >> 60 != 0 && h.h2 >> 60 != 0)
            continue;
        ++found;
        char expected[40];
        std::snprintf(expected, sizeof expected, "%" PRIx64 "%" PRIx64, h.h1, h.h2);
        std::string mask = murmur3Mask("seed", value);
        INFO(value);
        CHECK(mask == expected);
        CHECK(mask.size() < 32);
        CHECK(mask.find_first_not_of("0123456789abcdef") == std::string::npos);
    }
    CHECK(found == 5);
}
