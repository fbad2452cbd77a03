#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "core/encoding.h"
#include "evp_siv_reference.h"
#include "privacy/siv.h"
#include "test_util.h"

using namespace sluice;
using namespace sluice::privacy;
using sluice::privacy::testing::newCipher;
using sluice::privacy::testing::unhex;

namespace {

SivKey key(SivCipher& cipher, std::string_view bytes)
{
    auto k = cipher.makeKey(bytes);
    REQUIRE(k);
    return std::move(k).value();
}

std::string encrypt(SivCipher& cipher, std::string_view plaintext)
{
    std::string out;
    REQUIRE(cipher.encrypt(plaintext, out));
    return out;
}

struct DaeadVector {
    int tcId;
    const char* key;
    const char* aad;
    const char* msg;
    const char* ct;
};

// Wycheproof testvectors/aes_siv_cmac_test.json (C2SP/wycheproof), "keySize": 512 group plus
// tcId 1 (RFC 5297 A.1). Wycheproof's DaeadTest passes "aad" as the ONE associated-data
// component, exactly as Tink's DeterministicAead does, so the aad == "" cases are Tink's RAW
// output format (SIV || ciphertext).
const DaeadVector kWycheproofValid[] = {
    {1, "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
     "101112131415161718191a1b1c1d1e1f2021222324252627", "112233445566778899aabbccddee",
     "85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c"},
    {296, "bc7635c1fd566aa8357fd103714bfaee1c9e5b3c578b3980401a981030254a54"
          "b1756a8c96e600b7252fd0aab12f39d115d256b3f3e7c2c41a7fece72ba7c3c4",
     "", "", "44b1c6fe8a8c07dee5377b161f283c31"},
    {302, "c25cafc6018b98dfbb79a40ec89c575a4f88c4116489bba27707479800c01302"
          "35334a45dbe8d8dae3da8dcb45bbe5dce031b0f68ded544fda7eca30d6749442",
     "deeb0ccf3aef47a296ed1ca8f4ae5907", "beec61030fa3d670337196beade6aeaa",
     "5865208eab9163db85cab9f96d846234a2626aae22f5c17c9aad4b501f4416e4"},
    {305, "e2c5662bb18fbb411d0304e4241db073fe60a4704fee290073513038a22b4cd5"
          "42580b2b4edbc37e3de01c0cb61abcad46986cdc491ce9e5ae5af223ff58b953",
     "fab912dec29a34aabfaef176", "0d", "1c6969ecb15741a9959b7a8492250e391a"},
    {320, "139383f3f82dc78e0b380027f9e5fcd2ed23716404be5c554452e4dc73d23702"
          "6594491820c6b8297185cc1fa84f49a5c7d7cd05c5de090ff1c3397bc2740437",
     "d39da73ffc03ad0a9213ffc7", "48604944a80fadf50d55b87727934458c8",
     "a9cf73951cb39823777f35c96c845169476e2ec2317cb6b8dd8b6172fdceabff9d"},
    {325, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
          "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
     "", "8dbfee9580e7e2bc66100a674497f4e1", "000000000000000000000000000000007ef8aa7e4dd49d9cfa09e9cb574fd90d"},
    {327, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
          "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
     "", "72543a9a07a3c18a280060653432c05c", "ffffffffffffffffffffffffffffffff3db09cc48f2780859351901d1014ae06"},
    {329, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
          "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
     "", "ff4d7cdeb8f3c4e37a05a91ee26e2a84", "ffffffffffffffffffffffff7fffffffb0a9da80307785ecc1545966c64844de"},
    {331, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
          "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
     "", "6eb52fc95a5185a3bd2a30d3058414ab", "ffffffffffffffff7fffffffffffffff21518997d2d5c4ac067bc0ab21a27af1"},
    {333, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
          "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
     "", "114cc36e58faceb2e6a2344a679ea4c3", "fffffffffffffffffffffffffffffffe2f849650d6e89e2668e990219195719c"},
};

// Same file, "result": "invalid" (tags with a flipped bit); aad is "" in all of them.
const DaeadVector kWycheproofInvalid[] = {
    {335, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
          "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
     "", "", "6ef5b8ef53fc365606cd3ea047374885"},
    {336, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
          "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
     "", "3031323334353637", "202e4a8f8b4c66788f3af230fb1c3ada5ead70c7f066d4df"},
};

}  // namespace

TEST_CASE("RFC 5297 A.1: deterministic AES-SIV with one AD component", "[siv]")
{
    SivCipher cipher = newCipher();
    SivKey k = key(cipher, unhex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"));
    CHECK(k.size() == 32);
    const std::string ad = unhex("101112131415161718191a1b1c1d1e1f2021222324252627");
    const std::string plaintext = unhex("112233445566778899aabbccddee");
    const std::string_view ads[] = {ad};
    std::string out;
    REQUIRE(cipher.encryptWithAd(ads, plaintext, out));
    CHECK(toHex(out) == "85632d07c6e8f37f950acd320a2ecc93" "40c02b9690c4dc04daef7f6afe5c");
    std::string back;
    REQUIRE(cipher.decryptWithAd(ads, out, back));
    CHECK(back == plaintext);
}

TEST_CASE("RFC 5297 A.2: nonce-based AES-SIV with three AD components", "[siv]")
{
    SivCipher cipher = newCipher();
    SivKey k = key(cipher, unhex("7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f"));
    const std::string ad1 = unhex("00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100");
    const std::string ad2 = unhex("102030405060708090a0");
    const std::string nonce = unhex("09f911029d74e35bd84156c5635688c0");
    const std::string plaintext =
        unhex("7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67205349562d414553");
    const std::string_view ads[] = {ad1, ad2, nonce};
    std::string out;
    REQUIRE(cipher.encryptWithAd(ads, plaintext, out));
    CHECK(toHex(out) == "7bdb6e3b432667eb06f4d14bff2fbd0f"
                        "cb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d");
}

TEST_CASE("Wycheproof AES-SIV-CMAC vectors, including 512-bit keys", "[siv]")
{
    SivCipher cipher = newCipher();
    for (const auto& v : kWycheproofValid) {
        INFO("Wycheproof tcId " << v.tcId);
        SivKey k = key(cipher, unhex(v.key));
        const std::string aad = unhex(v.aad);
        const std::string msg = unhex(v.msg);
        const std::string_view ads[] = {aad};
        std::string out;
        REQUIRE(cipher.encryptWithAd(ads, msg, out));
        CHECK(toHex(out) == v.ct);
        std::string back;
        REQUIRE(cipher.decryptWithAd(ads, unhex(v.ct), back));
        CHECK(back == msg);
        if (aad.empty()) {
            // The Tink fast path (precomputed S2V prefix) must agree with the general S2V.
            REQUIRE(cipher.setKey(k));
            CHECK(toHex(encrypt(cipher, msg)) == v.ct);
            auto fast = cipher.decrypt(unhex(v.ct));
            REQUIRE(fast);
            CHECK(*fast == msg);
        }
    }
    for (const auto& v : kWycheproofInvalid) {
        INFO("Wycheproof tcId " << v.tcId);
        SivKey k = key(cipher, unhex(v.key));
        std::string back = "left over";
        Status st = cipher.decrypt(unhex(v.ct), back);
        CHECK(st.code() == StatusCode::kPermission);
        CHECK(back.empty());
    }
}

TEST_CASE("AES-SIV agrees with OpenSSL's EVP AES-256-SIV given an explicit empty AAD", "[siv]")
{
    SivCipher cipher = newCipher();
    auto evp = privacy::testing::EvpSiv::create(64);
    REQUIRE(evp);
    std::mt19937_64 rng(20240501);
    for (int i = 0; i < 4000; ++i) {
        const std::string keyBytes = privacy::testing::randomString(rng, 64);
        const std::string plaintext = privacy::testing::randomString(rng, rng() % 101);
        INFO("iteration " << i << ", plaintext length " << plaintext.size());
        SivKey k = key(cipher, keyBytes);
        std::string ours = encrypt(cipher, plaintext);
        std::string theirs;
        if (plaintext.empty()) {
            // OpenSSL 3.0 cannot do this one (see evp_siv_reference.h); ours round-trips.
            CHECK(evp->encryptRekey(keyBytes, plaintext, theirs).code() == StatusCode::kUnavailable);
            CHECK(cipher.decrypt(ours)->empty());
            continue;
        }
        REQUIRE(evp->encryptRekey(keyBytes, plaintext, theirs));
        REQUIRE(toHex(ours) == toHex(theirs));
        std::string back;
        REQUIRE(evp->decrypt(keyBytes, ours, back));
        CHECK(back == plaintext);
        auto mine = cipher.decrypt(theirs);
        REQUIRE(mine);
        CHECK(*mine == plaintext);
    }
}

TEST_CASE("OpenSSL's AES-SIV without the empty AAD update gives a different SIV", "[siv]")
{
    // Documents why the explicit zero-length AAD update matters for Tink compatibility.
    SivCipher cipher = newCipher();
    auto evp = privacy::testing::EvpSiv::create(64);
    REQUIRE(evp);
    const std::string keyBytes(64, '\x42');
    SivKey k = key(cipher, keyBytes);
    std::string withoutAd;
    REQUIRE(evp->encryptWithAd(keyBytes, {}, "user@example.com", withoutAd));
    CHECK(withoutAd != encrypt(cipher, "user@example.com"));
}

TEST_CASE("AES-SIV is deterministic per key and differs between keys", "[siv]")
{
    SivCipher cipher = newCipher();
    SivKey a = key(cipher, std::string(64, 'a'));
    SivKey b = key(cipher, std::string(64, 'b'));
    REQUIRE(cipher.setKey(a));
    std::string a1 = encrypt(cipher, "alice@example.com");
    REQUIRE(cipher.setKey(b));
    std::string b1 = encrypt(cipher, "alice@example.com");
    REQUIRE(cipher.setKey(a));
    std::string a2 = encrypt(cipher, "alice@example.com");
    CHECK(a1 == a2);
    CHECK(a1 != b1);
    CHECK(a1.size() == kSivSize + 17);
}

TEST_CASE("AES-SIV decryption rejects every single-byte alteration", "[siv]")
{
    SivCipher cipher = newCipher();
    SivKey k = key(cipher, std::string(64, '\x07'));
    for (size_t length : {0, 1, 15, 16, 17, 32, 45}) {
        const std::string plaintext(length, 'p');
        const std::string good = encrypt(cipher, plaintext);
        for (size_t i = 0; i < good.size(); ++i) {
            std::string bad = good;
            bad[i] = static_cast<char>(bad[i] ^ 0x01);
            std::string out = "stale";
            Status st = cipher.decrypt(bad, out);
            INFO("length " << length << ", byte " << i);
            CHECK(st.code() == StatusCode::kPermission);
            CHECK(out.empty());
        }
        // Truncation and extension fail too.
        if (!good.empty())
            CHECK_FALSE(cipher.decrypt(good.substr(0, good.size() - 1)).isOk());
        CHECK_FALSE(cipher.decrypt(good + "x").isOk());
    }
}

TEST_CASE("AES-SIV decryption under the wrong key fails cleanly", "[siv]")
{
    SivCipher cipher = newCipher();
    SivKey right = key(cipher, std::string(64, 'r'));
    std::string ct = encrypt(cipher, "4111 1111 1111 1111");
    SivKey wrong = key(cipher, std::string(64, 'w'));
    auto out = cipher.decrypt(ct);
    REQUIRE_FALSE(out);
    CHECK(out.status().code() == StatusCode::kPermission);
    CHECK(out.status().message().find("authentication failed") != std::string::npos);
}

TEST_CASE("AES-SIV input validation", "[siv]")
{
    SivCipher cipher = newCipher();
    std::string out;
    CHECK(cipher.encrypt("x", out).code() == StatusCode::kInternal);  // no key yet
    CHECK_FALSE(cipher.makeKey(std::string(48, 'k')));
    CHECK_FALSE(cipher.makeKey(""));
    SivKey k = key(cipher, std::string(64, 'k'));
    CHECK(cipher.decrypt("short").status().code() == StatusCode::kCorruption);
    SivKey empty;
    CHECK_FALSE(cipher.setKey(empty).isOk());
    SivKey moved = std::move(k);
    CHECK(k.empty());  // NOLINT(bugprone-use-after-move): moved-from keys are wiped and empty
    CHECK(moved.size() == 64);
    CHECK(cipher.setKey(moved));
}

TEST_CASE("AES-SIV keys made by one cipher work in another", "[siv]")
{
    SivCipher maker = newCipher();
    SivCipher user = newCipher();
    SivKey k = key(maker, unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                                "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"));
    REQUIRE(user.setKey(k));
    CHECK(toHex(encrypt(user, unhex("8dbfee9580e7e2bc66100a674497f4e1"))) ==
          "000000000000000000000000000000007ef8aa7e4dd49d9cfa09e9cb574fd90d");
}

TEST_CASE("AES-SIV switches between 128- and 256-bit keys", "[siv]")
{
    SivCipher cipher = newCipher();
    auto evp128 = privacy::testing::EvpSiv::create(32);
    auto evp256 = privacy::testing::EvpSiv::create(64);
    REQUIRE(evp128);
    REQUIRE(evp256);
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200; ++i) {
        bool small = i % 2 == 0;
        const std::string keyBytes = privacy::testing::randomString(rng, small ? 32 : 64);
        const std::string plaintext = privacy::testing::randomString(rng, 1 + rng() % 40);
        SivKey k = key(cipher, keyBytes);
        std::string theirs;
        REQUIRE((small ? *evp128 : *evp256).encryptRekey(keyBytes, plaintext, theirs));
        CHECK(encrypt(cipher, plaintext) == theirs);
    }
}

TEST_CASE("AES-SIV long plaintexts (several keystream chunks) agree with OpenSSL", "[siv]")
{
    SivCipher cipher = newCipher();
    auto evp = privacy::testing::EvpSiv::create(64);
    REQUIRE(evp);
    std::mt19937_64 rng(31337);
    for (size_t length : {255, 256, 257, 511, 512, 513, 1000, 4096, 65537}) {
        const std::string keyBytes = privacy::testing::randomString(rng, 64);
        const std::string plaintext = privacy::testing::randomString(rng, length);
        SivKey k = key(cipher, keyBytes);
        std::string theirs;
        REQUIRE(evp->encryptRekey(keyBytes, plaintext, theirs));
        INFO("length " << length);
        CHECK(encrypt(cipher, plaintext) == theirs);
        auto back = cipher.decrypt(theirs);
        REQUIRE(back);
        CHECK(*back == plaintext);
    }
}

TEST_CASE("AES-SIV results do not depend on what the cipher did before", "[siv]")
{
    // The CBC-MAC context carries its chain from one message to the next; interleave every kind
    // of call and compare each result with a fresh cipher's.
    SivCipher busy = newCipher();
    std::mt19937_64 rng(5);
    std::vector<std::string> rawKeys;
    std::vector<SivKey> keys;
    for (int i = 0; i < 5; ++i) {
        rawKeys.push_back(privacy::testing::randomString(rng, i == 4 ? 32 : 64));
        keys.push_back(key(busy, rawKeys.back()));
    }
    for (int i = 0; i < 300; ++i) {
        size_t which = rng() % keys.size();
        const std::string plaintext = privacy::testing::randomString(rng, rng() % 70);
        REQUIRE(busy.setKey(keys[which]));
        std::string got;
        switch (rng() % 4) {
        case 0:
            got = encrypt(busy, plaintext);
            break;
        case 1: {
            const std::string_view empty[] = {std::string_view()};
            REQUIRE(busy.encryptWithAd(empty, plaintext, got));
            break;
        }
        case 2: {
            got = encrypt(busy, plaintext);
            auto back = busy.decrypt(got);
            REQUIRE(back);
            CHECK(*back == plaintext);
            std::string tampered = got;
            tampered[0] = static_cast<char>(tampered[0] ^ 1);
            CHECK_FALSE(busy.decrypt(tampered).isOk());
            break;
        }
        default: {
            auto scratch = busy.makeKey(privacy::testing::randomString(rng, 64));  // switches keys away
            REQUIRE(scratch);
            REQUIRE(busy.setKey(keys[which]));
            got = encrypt(busy, plaintext);
        }
        }
        SivCipher fresh = newCipher();
        SivKey k = key(fresh, rawKeys[which]);
        INFO("step " << i);
        CHECK(got == encrypt(fresh, plaintext));
    }
}
