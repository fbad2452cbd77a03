#include <catch2/catch.hpp>

#include <set>

#include "core/encoding.h"
#include "privacy/key_wrap.h"

using namespace sluice;
using namespace sluice::privacy;

namespace {

SecretBytes masterKey(uint8_t first)
{
    SecretBytes key(kMasterKeySize);
    for (size_t i = 0; i < key.size(); ++i)
        key.data()[i] = static_cast<uint8_t>(first + i);
    return key;
}

KeyWrapper wrapper(uint8_t first = 0)
{
    auto w = KeyWrapper::create(masterKey(first));
    REQUIRE(w);
    return std::move(w).value();
}

const std::string kLink = "3f2b8a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";

}  // namespace

TEST_CASE("wrap/unwrap round trip: nonce || AES-256-GCM ciphertext || tag", "[keywrap]")
{
    KeyWrapper w = wrapper();
    const std::string dataKey(64, '\x5a');
    auto wrapped = w.wrap(dataKey, kLink);
    REQUIRE(wrapped);
    CHECK(wrapped->size() == kWrapNonceSize + 64 + kWrapTagSize);
    CHECK(wrapped->find(dataKey.substr(0, 8)) == std::string::npos);
    auto again = w.wrap(dataKey, kLink);
    CHECK(*again != *wrapped);  // fresh nonce each time
    auto key = w.unwrap(*wrapped, kLink);
    REQUIRE(key);
    CHECK(key->view() == dataKey);
}

TEST_CASE("unwrap refuses another master key, another key link, or altered bytes", "[keywrap]")
{
    KeyWrapper w = wrapper();
    auto wrapped = w.wrap(std::string(64, 'k'), kLink);
    REQUIRE(wrapped);
    auto otherMaster = wrapper(1).unwrap(*wrapped, kLink);
    CHECK(otherMaster.status().code() == StatusCode::kPermission);
    CHECK(otherMaster.status().message().find("wrong master key") != std::string::npos);
    CHECK(w.unwrap(*wrapped, "another-link").status().code() == StatusCode::kPermission);
    for (size_t i = 0; i < wrapped->size(); i += 7) {
        std::string bad = *wrapped;
        bad[i] = static_cast<char>(bad[i] ^ 0x80);
        CHECK(w.unwrap(bad, kLink).status().code() == StatusCode::kPermission);
    }
    CHECK(w.unwrap("short", kLink).status().code() == StatusCode::kCorruption);
    CHECK(KeyWrapper::create(SecretBytes(16)).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a KeySealer writes and reads wrap()'s format, keyed once for many keys", "[keywrap]")
{
    KeyWrapper w = wrapper();
    auto sealer = w.sealer();
    REQUIRE(sealer);
    RandomPool random(64);
    std::set<std::string> nonces;
    for (int i = 0; i < 50; ++i) {
        std::string dataKey(64, static_cast<char>('a' + i % 26));
        const std::string link = kLink.substr(0, 30) + std::to_string(100000 + i);
        auto sealed = sealer->wrap(dataKey, link, random);
        REQUIRE(sealed);
        REQUIRE(sealed->size() == kWrapNonceSize + 64 + kWrapTagSize);
        nonces.insert(sealed->substr(0, kWrapNonceSize));
        // The one-shot unwrap verifies the GCM tag under the master key, this nonce and this
        // link: the sealer's bytes are what wrap() gives for the same nonce.
        auto plain = w.unwrap(*sealed, link);
        REQUIRE(plain);
        CHECK(plain->view() == dataKey);
        auto wrapped = w.wrap(dataKey, link);
        REQUIRE(wrapped);
        auto back = sealer->unwrap(*wrapped, link);
        REQUIRE(back);
        CHECK(back->view() == dataKey);
        // A failed tag check leaves the context usable for the next key.
        CHECK(sealer->unwrap(*wrapped, kLink).status().code() == StatusCode::kPermission);
        std::string altered = *sealed;
        altered[kWrapNonceSize + 3] = static_cast<char>(altered[kWrapNonceSize + 3] ^ 1);
        CHECK(sealer->unwrap(altered, link).status().code() == StatusCode::kPermission);
        CHECK(sealer->unwrap(*sealed, link)->view() == dataKey);
    }
    CHECK(nonces.size() == 50);
    auto otherSealer = wrapper(1).sealer();
    REQUIRE(otherSealer);
    auto sealed = sealer->wrap(std::string(64, 'k'), kLink, random);
    CHECK(otherSealer->unwrap(*sealed, kLink).status().code() == StatusCode::kPermission);
    CHECK(sealer->unwrap("short", kLink).status().code() == StatusCode::kCorruption);
}

TEST_CASE("master key check value", "[keywrap]")
{
    KeyWrapper w = wrapper();
    auto check = w.makeCheck();
    REQUIRE(check);
    CHECK(check->rfind("sluice-mkcheck-v1:", 0) == 0);
    CHECK(w.verifyCheck(*check));
    Status other = wrapper(9).verifyCheck(*check);
    CHECK(other.code() == StatusCode::kPermission);
    CHECK(other.message() == "the master key does not match this database");
    CHECK(w.verifyCheck("garbage").code() == StatusCode::kCorruption);
    CHECK(w.verifyCheck("sluice-mkcheck-v1:AAAA").code() == StatusCode::kCorruption);
}

TEST_CASE("verifyMasterKey: the right key, another key, a database that cannot say", "[keywrap]")
{
    const KeyWrapper w = wrapper(1);
    const std::string check = *w.makeCheck();
    CHECK(verifyMasterKey(w, check, true));
    CHECK(verifyMasterKey(w, std::nullopt, false));  // a new database: record a check value
    CHECK(verifyMasterKey(wrapper(2), check, true).code() == StatusCode::kPermission);
    const Status guess = verifyMasterKey(w, std::nullopt, true);
    CHECK(guess.code() == StatusCode::kCorruption);
    CHECK(guess.message() == "the database holds keys but no master-key check value; refusing to guess");
}

TEST_CASE("deriveKey is HKDF-SHA256(master, no salt, info = label)", "[keywrap]")
{
    KeyWrapper w = wrapper();  // master key bytes 00 01 .. 1f
    // Expected values computed independently with Python's cryptography package
    // (HKDF(SHA256(), length=32, salt=None, info=label).derive(bytes(range(32)))).
    auto lookup = w.deriveKey(kLabelKeyLookup);
    REQUIRE(lookup);
    CHECK(toHex(lookup->view()) == "b95174094f7f9de53dd1afa068e52149689c077490f34fb825c8424d94b8f6b5");
    auto test = w.deriveKey("test label");
    REQUIRE(test);
    CHECK(toHex(test->view()) == "055f04236a39678db12e01569456f058c29ea44cd49ae5ee00496a427bda2ffa");
    CHECK(w.deriveKey(kLabelKeyLookup)->view() == lookup->view());
    CHECK(w.deriveKey(kLabelSketch, 16)->size() == 16);
    CHECK_FALSE(w.deriveKey(""));
    CHECK(wrapper(1).deriveKey(kLabelKeyLookup)->view() != lookup->view());
}
