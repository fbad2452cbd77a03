#include <catch2/catch.hpp>

#include "core/encoding.h"
#include "privacy/tink_ciphertext.h"
#include "test_util.h"

using namespace sluice;
using namespace sluice::privacy;
using sluice::privacy::testing::unhex;

namespace {

// Wycheproof aes_siv_cmac_test.json tcId 325 (512-bit key, aad "", i.e. Tink's RAW output).
const char* const kKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                         "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
const char* const kMsg = "8dbfee9580e7e2bc66100a674497f4e1";
const char* const kSivCt = "000000000000000000000000000000007ef8aa7e4dd49d9cfa09e9cb574fd90d";

struct CiphertextFixture {
    SivCipher cipher = std::move(SivCipher::create()).value();
    SivKey key = std::move(cipher.makeKey(unhex(kKey))).value();
};

}  // namespace

TEST_CASE("Tink ciphertext: 0x01 || key id big-endian || SIV || ciphertext", "[tink]")
{
    CiphertextFixture f;
    std::string raw;
    REQUIRE(tinkEncrypt(f.cipher, 0x01020304, unhex(kMsg), raw));
    CHECK(toHex(raw) == std::string("0101020304") + kSivCt);
    CHECK(raw.size() == tinkCiphertextSize(16));

    auto back = tinkDecrypt(f.cipher, 0x01020304, raw);
    REQUIRE(back);
    CHECK(toHex(*back) == kMsg);
}

TEST_CASE("Tink Base64 fast path equals Base64 of the raw form", "[tink]")
{
    CiphertextFixture f;
    for (size_t length : {0, 1, 5, 16, 31, 100, 1003, 1004, 5000}) {
        const std::string plaintext(length, 'v');
        std::string raw;
        REQUIRE(tinkEncrypt(f.cipher, 4000000000u, plaintext, raw));
        std::string text = "prefix:";
        REQUIRE(appendTinkBase64(f.cipher, 4000000000u, plaintext, text));
        INFO("length " << length);
        CHECK(text == "prefix:" + toBase64(raw));
        auto back = tinkDecryptBase64(f.cipher, 4000000000u, text.substr(7));
        REQUIRE(back);
        CHECK(*back == plaintext);
    }
}

TEST_CASE("Tink ciphertext parsing errors", "[tink]")
{
    CiphertextFixture f;
    std::string raw;
    REQUIRE(tinkEncrypt(f.cipher, 77, "secret", raw));
    CHECK(tinkDecrypt(f.cipher, 78, raw).status().code() == StatusCode::kNotFound);
    CHECK(tinkDecrypt(f.cipher, 77, raw.substr(0, 20)).status().code() == StatusCode::kCorruption);
    std::string legacy = raw;
    legacy[0] = 0;
    CHECK(tinkDecrypt(f.cipher, 77, legacy).status().code() == StatusCode::kCorruption);
    std::string other = raw;
    other[0] = 2;
    CHECK(parseTinkPrefix(other).status().code() == StatusCode::kCorruption);
    CHECK(tinkDecryptBase64(f.cipher, 77, "not base64!").status().code() == StatusCode::kCorruption);
    std::string altered = raw;
    altered.back() = static_cast<char>(altered.back() ^ 1);
    CHECK(tinkDecrypt(f.cipher, 77, altered).status().code() == StatusCode::kPermission);

    auto prefix = parseTinkPrefix(raw);
    REQUIRE(prefix);
    CHECK(prefix->startByte == kTinkStartByte);
    CHECK(prefix->keyId == 77);
    CHECK(prefix->sivAndCiphertext.size() == kSivSize + 6);
}
