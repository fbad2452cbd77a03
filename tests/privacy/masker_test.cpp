#include <catch2/catch.hpp>

#include "privacy/masker.h"
#include "privacy/murmur3.h"

using namespace sluice;
using namespace sluice::privacy;

TEST_CASE("hmac-sha256 mask is lowercase hex of HMAC-SHA256(seed, value)", "[masker]")
{
    auto masker = Masker::create(MaskAlgorithm::kHmacSha256, SecretBytes::copyOf("Jefe"));
    REQUIRE(masker);
    // RFC 4231 test case 2.
    auto mask = masker->mask("what do ya want for nothing?");
    REQUIRE(mask);
    CHECK(*mask == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    std::string out = "x=";
    REQUIRE(masker->append("what do ya want for nothing?", out));
    CHECK(out == "x=" + *mask);
}

TEST_CASE("murmur3 mask matches murmur3Mask(seed, value)", "[masker]")
{
    auto masker = Masker::create(MaskAlgorithm::kMurmur3, SecretBytes::copyOf("The quick brown fox "));
    REQUIRE(masker);
    auto mask = masker->mask("jumps over the lazy dog");
    REQUIRE(mask);
    CHECK(*mask == "e34bbc7bbc071b6c7a433ca9c49a9347");
    // Values longer than the scratch buffer and then shorter again.
    const std::string longValue(5000, 'z');
    CHECK(*masker->mask(longValue) == murmur3Mask("The quick brown fox ", longValue));
    CHECK(*masker->mask("a") == murmur3Mask("The quick brown fox ", "a"));
}

TEST_CASE("Masker clones give the same masks; an empty seed is refused for HMAC only", "[masker]")
{
    for (auto algorithm : {MaskAlgorithm::kHmacSha256, MaskAlgorithm::kMurmur3}) {
        auto masker = Masker::create(algorithm, SecretBytes::copyOf("seed"));
        REQUIRE(masker);
        auto clone = masker->clone();
        REQUIRE(clone);
        CHECK(clone->algorithm() == algorithm);
        CHECK(*masker->mask("alice@example.com") == *clone->mask("alice@example.com"));
        CHECK(*masker->mask("alice@example.com") != *masker->mask("bob@example.com"));
        Masker moved = std::move(masker).value();
        CHECK(*moved.mask("alice@example.com") == *clone->mask("alice@example.com"));
    }
    auto emptyHmac = Masker::create(MaskAlgorithm::kHmacSha256, SecretBytes());
    REQUIRE_FALSE(emptyHmac);
    CHECK(emptyHmac.status().message().find("hmac-sha256 needs a secret seed") != std::string::npos);
    auto emptyMurmur = Masker::create(MaskAlgorithm::kMurmur3, SecretBytes());
    REQUIRE(emptyMurmur);
    CHECK(*emptyMurmur->mask("The quick brown fox jumps over the lazy dog") == "e34bbc7bbc071b6c7a433ca9c49a9347");
    CHECK(*emptyMurmur->mask("x") == murmur3Mask("", "x"));
}
