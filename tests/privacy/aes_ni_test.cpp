// The AES-NI AES-256 against FIPS-197's known answer and against OpenSSL's AES-256-ECB and
// AES-256-CBC (random keys, every block count up to 40): the key expansion, one block, four
// blocks at a time and the CBC chain. SIV built on it is checked in siv_test.cpp (Wycheproof's
// 512-bit keys, OpenSSL's own AES-256-SIV).
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <cstring>
#include <string>
#include <vector>

#include "privacy/aes_ni.h"
#include "privacy/random.h"
#include "test_util.h"

namespace sluice::privacy {
namespace {

std::vector<uint8_t> hexBytes(std::string_view hex)
{
    const std::string bytes = testing::unhex(hex);
    return {bytes.begin(), bytes.end()};
}

// OpenSSL's AES-256 in `mode` ("AES-256-ECB" or "AES-256-CBC", zero IV, no padding).
std::vector<uint8_t> openssl(const char* mode, const uint8_t* key, const std::vector<uint8_t>& in)
{
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, mode, nullptr);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    REQUIRE(cipher);
    REQUIRE(ctx);
    const uint8_t iv[16] = {};
    REQUIRE(EVP_EncryptInit_ex2(ctx, cipher, key, iv, nullptr) == 1);
    REQUIRE(EVP_CIPHER_CTX_set_padding(ctx, 0) == 1);
    std::vector<uint8_t> out(in.size());
    int n = 0;
    REQUIRE(EVP_EncryptUpdate(ctx, out.data(), &n, in.data(), static_cast<int>(in.size())) == 1);
    REQUIRE(static_cast<size_t>(n) == in.size());
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    return out;
}

}  // namespace

TEST_CASE("AES-NI AES-256: FIPS-197 C.3", "[aesni]")
{
    if (!aesni::available())
        return;  // this CPU has no AES-NI: nothing to compare
    const auto key = hexBytes("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    auto block = hexBytes("00112233445566778899aabbccddeeff");
    aesni::RoundKeys256 rk;
    aesni::expandKey256(key.data(), rk);
    // The schedule starts with the key itself.
    CHECK(std::vector<uint8_t>(rk.bytes.begin(), rk.bytes.begin() + 32) == key);
    aesni::encryptBlocks256(rk, block.data(), 1);
    CHECK(block == hexBytes("8ea2b7ca516745bfeafc49904b496089"));
}

TEST_CASE("AES-NI AES-256 agrees with OpenSSL's ECB and CBC for random keys and lengths", "[aesni]")
{
    if (!aesni::available())
        return;  // this CPU has no AES-NI: nothing to compare
    for (int round = 0; round < 20; ++round) {
        auto key = randomBytes(32);
        REQUIRE(key.isOk());
        aesni::RoundKeys256 rk;
        aesni::expandKey256(key->data(), rk);
        for (size_t blocks = 1; blocks <= 40; ++blocks) {
            auto data = randomBytes(16 * blocks);
            REQUIRE(data.isOk());
            const std::vector<uint8_t> in(data->data(), data->data() + data->size());
            INFO("round " << round << ", " << blocks << " block(s)");
            std::vector<uint8_t> ecb = in;
            aesni::encryptBlocks256(rk, ecb.data(), blocks);
            CHECK(ecb == openssl("AES-256-ECB", key->data(), in));
            const std::vector<uint8_t> cbc = openssl("AES-256-CBC", key->data(), in);
            uint8_t mac[16];
            aesni::cbcMac256(rk, in.data(), blocks, mac);
            CHECK(std::memcmp(mac, cbc.data() + cbc.size() - 16, 16) == 0);
        }
    }
}

}  // namespace sluice::privacy
