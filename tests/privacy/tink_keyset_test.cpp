#include <catch2/catch.hpp>

#include "core/encoding.h"
#include "privacy/tink_ciphertext.h"
#include "privacy/tink_keyset.h"
#include "test_util.h"

using namespace sluice;
using namespace sluice::privacy;
using sluice::privacy::testing::newCipher;
using sluice::privacy::testing::unhex;

namespace {

std::string key00to3f()
{
    std::string key;
    for (int i = 0; i < 64; ++i)
        key += static_cast<char>(i);
    return key;
}

// Base64 of serialized AesSivKey protobufs around the key 00 01 .. 3f.
const char* const kProtoPlain = "EkAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/";
const char* const kProtoVersion0 =
    "CAASQAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const char* const kProtoUnknownField =
    "EkAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/GAU=";
const char* const kProtoVersion1 =
    "CAESQAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const char* const kProto32 = "EiAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHw==";

// A keyset written by Tink's Tinkey ("tinkey create-keyset --key-template=AES256_SIV"), as
// published in tink-crypto/tink examples/python/deterministic_aead/deterministic_aead_basic.py,
// with its original field order and whitespace.
const char* const kTinkeyKeyset = R"({
      "key": [{
          "keyData": {
              "keyMaterialType":
                  "SYMMETRIC",
              "typeUrl":
                  "type.googleapis.com/google.crypto.tink.AesSivKey",
              "value":
                  "EkAl9HCMmKTN1p3V186uhZpJQ+tivyc4IKyE+opg6SsEbWQ/WesWHzwCRrlgRuxdaggvgMzwWhjPnkk9gptBnGLK"
          },
          "keyId": 1919301694,
          "outputPrefixType": "TINK",
          "status": "ENABLED"
      }],
      "primaryKeyId": 1919301694
  })";

std::string keysetWith(const std::string& keysJson, const char* primary = "1")
{
    return std::string("{\"primaryKeyId\": ") + primary + ", \"key\": [" + keysJson + "]}";
}

std::string keyJson(const std::string& id, const char* status, const char* prefix, const char* value,
                    const char* typeUrl = "type.googleapis.com/google.crypto.tink.AesSivKey")
{
    return std::string("{\"keyData\": {\"typeUrl\": \"") + typeUrl + "\", \"value\": \"" + value +
           "\", \"keyMaterialType\": \"SYMMETRIC\"}, \"status\": \"" + status + "\", \"keyId\": " + id +
           ", \"outputPrefixType\": \"" + prefix + "\"}";
}

}  // namespace

TEST_CASE("keyset export is exactly the spec's JSON", "[keyset]")
{
    auto json = tinkKeysetJson(123456789, key00to3f());
    REQUIRE(json);
    CHECK(*json == std::string("{\"primaryKeyId\": 123456789, \"key\": [{\"keyData\": {\"typeUrl\": "
                               "\"type.googleapis.com/google.crypto.tink.AesSivKey\", \"value\": \"") +
                       kProtoPlain +
                       "\", \"keyMaterialType\": \"SYMMETRIC\"}, \"status\": \"ENABLED\", \"keyId\": 123456789, "
                       "\"outputPrefixType\": \"TINK\"}]}");
    CHECK_FALSE(tinkKeysetJson(1, std::string(32, 'k')));

    auto proto = serializeAesSivKey(key00to3f());
    REQUIRE(proto);
    CHECK(toBase64(proto->view()) == kProtoPlain);
}

TEST_CASE("keyset export round trip, including the largest key id", "[keyset]")
{
    SivCipher cipher = newCipher();
    for (uint32_t id : {1u, 4294967295u}) {
        auto json = tinkKeysetJson(id, key00to3f());
        REQUIRE(json);
        auto keyset = parseTinkKeyset(*json);
        REQUIRE(keyset);
        CHECK(keyset->primaryKeyId == id);
        REQUIRE(keyset->keys.size() == 1);
        CHECK(keyset->keys[0].keyId == id);
        CHECK(keyset->keys[0].status == TinkKeyStatus::kEnabled);
        CHECK(keyset->keys[0].outputPrefix == TinkOutputPrefix::kTink);
        CHECK(keyset->keys[0].keyValue.view() == key00to3f());

        auto k = cipher.makeKey(key00to3f());
        REQUIRE(k);
        std::string raw;
        REQUIRE(tinkEncrypt(cipher, id, "jane@example.com", raw));
        auto plain = tinkKeysetDecrypt(*keyset, raw, cipher);
        REQUIRE(plain);
        CHECK(*plain == "jane@example.com");
    }
}

TEST_CASE("a keyset written by Tinkey parses and decrypts", "[keyset]")
{
    auto keyset = parseTinkKeyset(kTinkeyKeyset);
    REQUIRE(keyset);
    CHECK(keyset->primaryKeyId == 1919301694u);
    REQUIRE(keyset->keys.size() == 1);
    CHECK(toHex(keyset->keys[0].keyValue.view()) ==
          "25f4708c98a4cdd69dd5d7ceae859a4943eb62bf273820ac84fa8a60e92b046d"
          "643f59eb161f3c0246b96046ec5d6a082f80ccf05a18cf9e493d829b419c62ca");
    SivCipher cipher = newCipher();
    // Tink-format ciphertexts (AD "") under that key, computed independently with Python
    // cryptography's AESSIV: b"\x01" + keyId.to_bytes(4, "big") + AESSIV(key).encrypt(pt, [b""]).
    const std::pair<const char*, const char*> known[] = {
        {"AXJmOD6IkOv787yGFRqgwGHJTUVzcdja", "msg"},
        {"AXJmOD69m/q77oGJMeFwGVR1sSzMSpzvFE4vv6+8AYBQdtVMf3Y=", "alice@example.com"},
    };
    for (auto [b64, plaintext] : known) {
        auto raw = fromBase64(b64);
        REQUIRE(raw);
        auto plain = tinkKeysetDecrypt(*keyset, *raw, cipher);
        REQUIRE(plain);
        CHECK(*plain == plaintext);
        // And our encryption reproduces the same text.
        auto k = cipher.makeKey(keyset->keys[0].keyValue.view());
        REQUIRE(k);
        std::string text;
        REQUIRE(appendTinkBase64(cipher, 1919301694u, plaintext, text));
        CHECK(text == b64);
    }
}

TEST_CASE("AesSivKey protobuf: version present or absent, unknown fields skipped", "[keyset]")
{
    for (const char* value : {kProtoPlain, kProtoVersion0, kProtoUnknownField}) {
        std::string text = "  \n" + keysetWith(keyJson("1", "ENABLED", "TINK", value)) + "\n\t ";
        auto keyset = parseTinkKeyset(text);
        INFO(value);
        REQUIRE(keyset);
        CHECK(keyset->keys[0].keyValue.view() == key00to3f());
    }
    CHECK_FALSE(parseTinkKeyset(keysetWith(keyJson("1", "ENABLED", "TINK", kProtoVersion1))));
    CHECK_FALSE(parseTinkKeyset(keysetWith(keyJson("1", "ENABLED", "TINK", kProto32))));
    CHECK_FALSE(parseAesSivKey(std::string("\x12\x41", 2) + key00to3f()));  // length past the end
    CHECK_FALSE(parseAesSivKey(std::string("\x0a\x40", 2) + key00to3f()));  // field 1 as bytes
    // URL-safe, unpadded Base64 (another proto3 JSON writer's choice) is accepted.
    const char* urlSafe = "EkAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4_";
    auto lenient = parseTinkKeyset(keysetWith(keyJson("1", "ENABLED", "TINK", urlSafe)));
    REQUIRE(lenient);
    CHECK(lenient->keys[0].keyValue.view() == key00to3f());
}

TEST_CASE("keyset decryption picks keys by output prefix and ignores disabled keys", "[keyset]")
{
    // Wycheproof aes_siv_cmac_test.json tcId 325 uses the key 00 .. 3f with aad "": its "ct" is
    // exactly what a Tink RAW key outputs.
    const std::string wycheproofCt = unhex("000000000000000000000000000000007ef8aa7e4dd49d9cfa09e9cb574fd90d");
    const std::string wycheproofMsg = unhex("8dbfee9580e7e2bc66100a674497f4e1");

    const std::string other = toBase64(serializeAesSivKey(std::string(64, 'x'))->view());
    std::string keys = keyJson("10", "ENABLED", "TINK", other.c_str()) + "," +
                       keyJson("20", "ENABLED", "LEGACY", kProtoPlain) + "," +
                       keyJson("30", "ENABLED", "RAW", kProtoPlain) + "," +
                       keyJson("40", "DISABLED", "TINK", kProtoPlain) + "," +
                       keyJson("50", "ENABLED", "CRUNCHY", kProtoPlain);
    auto keyset = parseTinkKeyset(keysetWith(keys, "10"));
    REQUIRE(keyset);
    REQUIRE(keyset->keys.size() == 5);
    CHECK(keyset->keys[3].status == TinkKeyStatus::kDisabled);
    CHECK(keyset->keys[3].keyValue.empty());

    SivCipher cipher = newCipher();
    auto raw = tinkKeysetDecrypt(*keyset, wycheproofCt, cipher);
    REQUIRE(raw);
    CHECK(*raw == wycheproofMsg);

    auto withPrefix = [&](uint8_t start, uint32_t id) {
        std::string out(1, static_cast<char>(start));
        for (int shift = 24; shift >= 0; shift -= 8)
            out += static_cast<char>(id >> shift);
        return out + wycheproofCt;
    };
    CHECK(*tinkKeysetDecrypt(*keyset, withPrefix(0x00, 20), cipher) == wycheproofMsg);  // LEGACY
    CHECK(*tinkKeysetDecrypt(*keyset, withPrefix(0x00, 50), cipher) == wycheproofMsg);  // CRUNCHY
    // Key 40 holds the right key but is disabled; key 10 has the right id but another key.
    // Neither may decrypt; the RAW key then sees the prefixed input and fails too.
    CHECK(tinkKeysetDecrypt(*keyset, withPrefix(0x01, 40), cipher).status().code() == StatusCode::kPermission);
    CHECK(tinkKeysetDecrypt(*keyset, withPrefix(0x01, 10), cipher).status().code() == StatusCode::kPermission);
    // A TINK prefix on a LEGACY key's id does not match.
    CHECK_FALSE(tinkKeysetDecrypt(*keyset, withPrefix(0x01, 20), cipher));

    auto onlyTink = parseTinkKeyset(keysetWith(keyJson("10", "ENABLED", "TINK", kProtoPlain)));
    REQUIRE(onlyTink);
    CHECK(tinkKeysetDecrypt(*onlyTink, withPrefix(0x01, 99), cipher).status().code() == StatusCode::kNotFound);
}

TEST_CASE("keyset parse errors", "[keyset]")
{
    CHECK_FALSE(parseTinkKeyset("not json"));
    CHECK_FALSE(parseTinkKeyset("[]"));
    CHECK_FALSE(parseTinkKeyset("{\"primaryKeyId\": 1}"));
    CHECK_FALSE(parseTinkKeyset("{\"key\": []}"));
    CHECK_FALSE(parseTinkKeyset(std::string(100, '[') + std::string(100, ']')));
    CHECK_FALSE(parseTinkKeyset(keysetWith(keyJson("-1", "ENABLED", "TINK", kProtoPlain))));
    CHECK_FALSE(parseTinkKeyset(keysetWith(keyJson("4294967296", "ENABLED", "TINK", kProtoPlain))));
    CHECK_FALSE(parseTinkKeyset(keysetWith(keyJson("1.5", "ENABLED", "TINK", kProtoPlain))));
    CHECK_FALSE(parseTinkKeyset(keysetWith(keyJson("1", "ENABLED", "TINK", kProtoPlain), "-3")));
    CHECK_FALSE(parseTinkKeyset(keysetWith(keyJson("1", "ON", "TINK", kProtoPlain))));
    CHECK_FALSE(parseTinkKeyset(keysetWith(keyJson("1", "ENABLED", "UNKNOWN_PREFIX", kProtoPlain))));
    CHECK_FALSE(parseTinkKeyset(keysetWith(keyJson("1", "ENABLED", "TINK", "@@@@"))));
    auto gcm = parseTinkKeyset(keysetWith(
        keyJson("1", "ENABLED", "TINK", kProtoPlain, "type.googleapis.com/google.crypto.tink.AesGcmKey")));
    REQUIRE_FALSE(gcm);
    CHECK(gcm.status().message().find("AesGcmKey") != std::string::npos);
    // A disabled key of another type does not matter.
    CHECK(parseTinkKeyset(keysetWith(
        keyJson("1", "DISABLED", "TINK", kProtoPlain, "type.googleapis.com/google.crypto.tink.AesGcmKey"))));
}

TEST_CASE("CSV export: every value quoted, quotes doubled, round trip", "[keyset][csv]")
{
    auto json = tinkKeysetJson(42, key00to3f());
    REQUIRE(json);
    std::string csv;
    appendKeyExportCsvHeader(csv);
    appendKeyExportCsvRow(csv, {"8a1f6c2e-0d4b-4c8e-9f2a-1b3c5d7e9f01", *json, "", 1700000000123});
    appendKeyExportCsvRow(csv, {"link,with \"odd\"\nchars", "{}", "policy-1", -5});
    const std::string firstLine = csv.substr(0, csv.find('\n'));
    CHECK(firstLine == "keyLink,encryptionKey,policyId,expiresAt");
    std::string second = csv.substr(firstLine.size() + 1);
    CHECK(second.rfind("\"8a1f6c2e-0d4b-4c8e-9f2a-1b3c5d7e9f01\",\"{\"\"primaryKeyId\"\": 42, \"\"key\"\": [", 0) == 0);
    CHECK(second.find("\"\"outputPrefixType\"\": \"\"TINK\"\"}]}\",\"\",\"1700000000123\"\n") != std::string::npos);

    auto rows = parseKeyExportCsv(csv);
    REQUIRE(rows);
    REQUIRE(rows->size() == 2);
    CHECK((*rows)[0].keyLink == "8a1f6c2e-0d4b-4c8e-9f2a-1b3c5d7e9f01");
    CHECK((*rows)[0].encryptionKey == *json);
    CHECK((*rows)[0].policyId.empty());
    CHECK((*rows)[0].expiresAtMs == 1700000000123);
    CHECK((*rows)[1].keyLink == "link,with \"odd\"\nchars");
    CHECK((*rows)[1].expiresAtMs == -5);
    auto keyset = parseTinkKeyset((*rows)[0].encryptionKey);
    REQUIRE(keyset);
    CHECK(keyset->keys[0].keyValue.view() == key00to3f());
}

TEST_CASE("CSV parser: RFC 4180 variants and errors", "[keyset][csv]")
{
    auto crlf = parseKeyExportCsv("\xEF\xBB\xBF\"keyLink\",\"encryptionKey\",\"policyId\",\"expiresAt\"\r\n"
                                  "a,b,,7\r\n\r\n\"x\",\"\",\"\",\"8\"");
    REQUIRE(crlf);
    REQUIRE(crlf->size() == 2);
    CHECK((*crlf)[0].keyLink == "a");
    CHECK((*crlf)[0].encryptionKey == "b");
    CHECK((*crlf)[1].expiresAtMs == 8);
    CHECK((*crlf)[1].encryptionKey.empty());

    CHECK_FALSE(parseKeyExportCsv(""));
    CHECK_FALSE(parseKeyExportCsv("keyLink,encryptionKey,policyId\n"));
    CHECK_FALSE(parseKeyExportCsv("keyLink,key,policyId,expiresAt\n"));
    auto unclosed = parseKeyExportCsv("keyLink,encryptionKey,policyId,expiresAt\n\"a,b,c,1\n");
    REQUIRE_FALSE(unclosed);
    CHECK(unclosed.status().message().find("record 2") != std::string::npos);
    CHECK_FALSE(parseKeyExportCsv("keyLink,encryptionKey,policyId,expiresAt\n\"a\"x,b,c,1\n"));
    CHECK_FALSE(parseKeyExportCsv("keyLink,encryptionKey,policyId,expiresAt\na\"b,c,d,1\n"));
    CHECK_FALSE(parseKeyExportCsv("keyLink,encryptionKey,policyId,expiresAt\na,b,c\n"));
    CHECK_FALSE(parseKeyExportCsv("keyLink,encryptionKey,policyId,expiresAt\na,b,c,soon\n"));
    CHECK_FALSE(parseKeyExportCsv("keyLink,encryptionKey,policyId,expiresAt\ra,b,c,1\n"));
}
