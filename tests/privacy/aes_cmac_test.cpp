#include <catch2/catch.hpp>

#include <cstdio>
#include <random>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/encoding.h"
#include "privacy/aes_cmac.h"
#include "privacy/evp_handles.h"
#include "test_util.h"

using namespace sluice;
using namespace sluice::privacy;
using sluice::privacy::testing::unhex;

namespace {

std::string hexOf(const Block& b) { return toHex({reinterpret_cast<const char*>(b.data()), b.size()}); }

// OpenSSL's EVP_MAC "CMAC", as an independent reference.
std::string referenceCmac(std::string_view key, std::string_view data)
{
    auto mac = fetchMac("CMAC");
    REQUIRE(mac);
    MacCtxPtr ctx(EVP_MAC_CTX_new(mac->get()));
    REQUIRE(ctx);
    char cipher[16];
    std::snprintf(cipher, sizeof cipher, "AES-%zu-CBC", key.size() * 8);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0), OSSL_PARAM_construct_end()};
    unsigned char out[16];
    size_t length = 0;
    bool ok = EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) == 1 &&
              EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1 &&
              EVP_MAC_final(ctx.get(), out, &length, sizeof out) == 1;
    return ok ? toHex({reinterpret_cast<const char*>(out), length}) : "error";
}

}  // namespace

TEST_CASE("RFC 4493 AES-CMAC test vectors", "[cmac]")
{
    auto cmac = AesCmac::create();
    REQUIRE(cmac);
    REQUIRE(cmac->setKey(unhex("2b7e151628aed2a6abf7158809cf4f3c")));
    // Section 4: subkey generation.
    CHECK(hexOf(cmac->subkey1()) == "fbeed618357133667c85e08f7236a8de");
    CHECK(hexOf(cmac->subkey2()) == "f7ddac306ae266ccf90bc11ee46d513b");
    const std::string m = unhex("6bc1bee22e409f96e93d7e117393172a" "ae2d8a571e03ac9c9eb76fac45af8e51"
                                "30c81c46a35ce411e5fbc1191a0a52ef" "f69f2445df4f9b17ad2b417be66c3710");
    const std::pair<size_t, const char*> examples[] = {
        {0, "bb1d6929e95937287fa37d129b756746"},
        {16, "070a16b46b4d4144f79bdd9dd04a287c"},
        {40, "dfa66747de9ae63030ca32611497c827"},
        {64, "51f0bebf7e3b9d92fc49741779363cfe"},
    };
    for (auto [length, expected] : examples) {
        INFO("message length " << length);
        auto tag = cmac->mac(std::string_view(m).substr(0, length));
        REQUIRE(tag);
        CHECK(hexOf(*tag) == expected);
    }
}

TEST_CASE("AES-CMAC matches OpenSSL's EVP_MAC CMAC for AES-128 and AES-256", "[cmac]")
{
    auto cmac = AesCmac::create();
    REQUIRE(cmac);
    std::mt19937_64 rng(99);
    for (int i = 0; i < 500; ++i) {
        const std::string key = privacy::testing::randomString(rng, i % 2 ? 32 : 16);
        const std::string data = privacy::testing::randomString(rng, rng() % 80);
        REQUIRE(cmac->setKey(key));
        auto tag = cmac->mac(data);
        REQUIRE(tag);
        CHECK(hexOf(*tag) == referenceCmac(key, data));
    }
}

TEST_CASE("dbl doubles in GF(2^128)", "[cmac]")
{
    Block b{};
    b[15] = 1;
    Block d = dbl(b);
    CHECK(d[15] == 2);
    Block top{};
    top[0] = 0x80;
    Block reduced = dbl(top);
    CHECK(reduced[0] == 0);
    CHECK(reduced[15] == 0x87);
}
