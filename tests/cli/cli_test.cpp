// sluicectl subcommands in-process, without a daemon: usage and exit codes, mask vectors,
// decrypt with key files in every accepted form, send to an endpoint that never answers,
// check-config, and the refusals when there is no database.
#include <catch2/catch.hpp>

#include <cinttypes>
#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "cli_support.h"
#include "harness.h"
#include "privacy/murmur3.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

// The AES256_SIV keyset from Tink's published examples (created with Tinkey), as Tinkey prints it.
const char* const kTinkeyKeyset = R"({
  "key": [{
    "keyData": {
      "keyMaterialType": "SYMMETRIC",
      "typeUrl": "type.googleapis.com/google.crypto.tink.AesSivKey",
      "value": "EkAl9HCMmKTN1p3V186uhZpJQ+tivyc4IKyE+opg6SsEbWQ/WesWHzwCRrlgRuxdaggvgMzwWhjPnkk9gptBnGLK"
    },
    "keyId": 1919301694,
    "outputPrefixType": "TINK",
    "status": "ENABLED"
  }],
  "primaryKeyId": 1919301694
})";

// The same key on one line (as the JSON-lines export and the CSV embed it).
const char* const kKeysetOneLine =
    R"({"primaryKeyId": 1919301694, "key": [{"keyData": {"typeUrl": "type.googleapis.com/google.crypto.tink.AesSivKey", )"
    R"("value": "EkAl9HCMmKTN1p3V186uhZpJQ+tivyc4IKyE+opg6SsEbWQ/WesWHzwCRrlgRuxdaggvgMzwWhjPnkk9gptBnGLK", )"
    R"("keyMaterialType": "SYMMETRIC"}, "status": "ENABLED", "keyId": 1919301694, "outputPrefixType": "TINK"}]})";

// Tink ciphertexts under that key, computed independently of this project with Python
// cryptography's AESSIV: base64(b"\x01" + keyId.to_bytes(4, "big") + AESSIV(key).encrypt(pt, [b""])).
const std::pair<const char*, const char*> kVectors[] = {
    {"AXJmOD6IkOv787yGFRqgwGHJTUVzcdja", "msg"},
    {"AXJmOD69m/q77oGJMeFwGVR1sSzMSpzvFE4vv6+8AYBQdtVMf3Y=", "alice@example.com"},
    {"AXJmOD49r3qV8YKswv2tmBFLfaxsNAq+ssNZ+1XP/MbnTqic", "ann@example.com"},
    {"AXJmOD6/obJdS1GzRxh40My6yh5Z5kP0C2NJJDE=", "Zo\xc3\xab \xe2\x98\x83"},
};

// A RAW-prefix key (bytes 00..3f) and a value encrypted under it the same independent way.
const char* const kRawKey = R"({"keyData": {"typeUrl": "type.googleapis.com/google.crypto.tink.AesSivKey", )"
                            R"("value": "EkAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/", )"
                            R"("keyMaterialType": "SYMMETRIC"}, "status": "ENABLED", "keyId": 7, "outputPrefixType": "RAW"})";
const char* const kRawCiphertext = "jfLyAV5JXA0pxvhDVtP7M4KGwYcWQOlZZQ==";

std::string vectorInput()
{
    std::string in;
    for (const auto& [b64, plain] : kVectors)
        in += std::string(b64) + "\n";
    return in;
}

std::string expectedPlaintexts()
{
    std::string out;
    for (const auto& [b64, plain] : kVectors)
        out += std::string(plain) + "\n";
    return out;
}

}  // namespace

TEST_CASE("help, usage errors and exit codes", "[cli]")
{
    auto help = sluicectl({"help"});
    CHECK(help.code == 0);
    for (const char* name : {"send", "keys export", "decrypt", "mask", "forget", "status", "check-config", "bench"})
        CHECK(help.out.find(name) != std::string::npos);

    CHECK(sluicectl({}).code == sluice::kExitUsage);
    auto unknown = sluicectl({"frobnicate"});
    CHECK(unknown.code == sluice::kExitUsage);
    CHECK(unknown.err.find("unknown command 'frobnicate'") != std::string::npos);
    CHECK(sluicectl({"keys"}).code == sluice::kExitUsage);
    CHECK(sluicectl({"keys", "import"}).code == sluice::kExitUsage);

    for (std::vector<std::string> cmd : {std::vector<std::string>{"send"}, {"keys", "export"}, {"decrypt"}, {"mask"},
                                         {"forget"}, {"status"}, {"check-config"}}) {
        std::string name = cmd[0] + (cmd.size() > 1 ? " " + cmd[1] : "");
        INFO(name);
        cmd.push_back("--help");
        auto r = sluicectl(cmd);
        CHECK(r.code == 0);
        CHECK(r.out.rfind("usage: sluicectl " + name, 0) == 0);
        CHECK(sluicectl({"help", cmd[0]}).out == r.out);
    }

    auto badOption = sluicectl({"mask", "--no-such-option"});
    CHECK(badOption.code == sluice::kExitUsage);
    CHECK(badOption.err.find("sluicectl mask:") == 0);
    CHECK(sluicectl({"send", "--events-per-message", "0"}).code == sluice::kExitUsage);
    CHECK(sluicectl({"send", "--generate", "5", "file.jsonl"}).code == sluice::kExitUsage);
    CHECK(sluicectl({"forget"}).code == sluice::kExitUsage);
    CHECK(sluicectl({"forget", "--subject", "x", "--key-link", "y"}).code == sluice::kExitUsage);
    CHECK(sluicectl({"keys", "export", "--format", "xml"}).code == sluice::kExitUsage);
    CHECK(sluicectl({"keys", "export", "--all", "--key-link", "x"}).code == sluice::kExitUsage);
    CHECK(sluicectl({"decrypt", "--contract", "a/b/1", "AXJmOD6IkOv787yGFRqgwGHJTUVzcdja"}).code == sluice::kExitUsage);
}

TEST_CASE("mask: hmac-sha256 is HMAC-SHA256(seed, value) in lowercase hex (RFC 4231)", "[cli][mask]")
{
    TempDir dir("sluicectl-mask");
    writeFile(dir.file("jefe"), "Jefe");
    // RFC 4231 test case 2.
    auto r = sluicectl({"mask", "--seed-file", dir.file("jefe"), "what do ya want for nothing?"});
    CHECK(r.code == 0);
    CHECK(r.out == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843\n");
    // One trailing newline in the seed file is not part of the seed.
    writeFile(dir.file("jefe-nl"), "Jefe\n");
    CHECK(sluicectl({"mask", "--algorithm", "hmac-sha256", "--seed-file", dir.file("jefe-nl"),
                     "what do ya want for nothing?"})
              .out == r.out);
    // RFC 4231 test case 1: a 20-byte key of 0x0b.
    writeFile(dir.file("0b"), std::string(20, '\x0b'));
    CHECK(sluicectl({"mask", "--seed-file", dir.file("0b"), "Hi There"}).out ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7\n");
}

TEST_CASE("mask: murmur3 reproduces published MurmurHash3_x64_128 values in STRM's format", "[cli][mask]")
{
    TempDir dir("sluicectl-mask");
    // Guava's Murmur3Hash128Test known values (seed 0), the input split between seed and value:
    // the mask hashes the bytes seed + value.
    writeFile(dir.file("fox"), "The quick brown fox ");
    auto r = sluicectl({"mask", "--algorithm", "murmur3", "--seed-file", dir.file("fox")},
                       "jumps over the lazy dog\njumps over the lazy cog\n");
    CHECK(r.code == 0);
    CHECK(r.out == "e34bbc7bbc071b6c7a433ca9c49a9347\n658ca970ff85269a43fee3eaa68e5c3e\n");
    writeFile(dir.file("he"), "he");
    CHECK(sluicectl({"mask", "--algorithm", "murmur3", "--seed-file", dir.file("he"), "ll"}).out ==
          "629942693e10f86792db0b82baeb5347\n");

    // Halves print without leading zeros: find values whose halves start with a zero nibble and
    // compare with printf's %PRIx64, which drops them.
    writeFile(dir.file("seed"), "seed");
    int found = 0;
    for (int i = 0; i < 20000 && found < 3; ++i) {
        const std::string value = "customer-" + std::to_string(i);
        const privacy::Murmur3Hash h = privacy::murmur3x64_128("seed" + value, 0);
        if (h.h1 >> 60 != 0 && h.h2 >> 60 != 0)
            continue;
        ++found;
        char expected[40];
        std::snprintf(expected, sizeof expected, "%" PRIx64 "%" PRIx64 "\n", h.h1, h.h2);
        auto m = sluicectl({"mask", "--algorithm", "murmur3", "--seed-file", dir.file("seed"), value});
        INFO(value);
        CHECK(m.out == expected);
        CHECK(m.out.size() < 33);
    }
    CHECK(found == 3);
}

TEST_CASE("mask: an empty seed file is an empty murmur3 seed (issue 11)", "[cli][mask]")
{
    TempDir dir("sluicectl-mask");
    // Guava's known value for the whole sentence with seed 0: the mask of an output made without
    // a seed, as STRM Privacy publishes them.
    for (const char* content : {"", "\n"}) {
        writeFile(dir.file("empty"), content);
        auto r = sluicectl({"mask", "--algorithm", "murmur3", "--seed-file", dir.file("empty"),
                            "The quick brown fox jumps over the lazy dog"});
        CHECK(r.code == 0);
        CHECK(r.out == "e34bbc7bbc071b6c7a433ca9c49a9347\n");
        CHECK(r.err.empty());
    }
}

TEST_CASE("mask: refusals", "[cli][mask]")
{
    TempDir dir("sluicectl-mask");
    CHECK(sluicectl({"mask", "x"}).code == sluice::kExitUsage);  // no seed
    CHECK(sluicectl({"mask", "--algorithm", "md5", "--seed-file", dir.file("none"), "x"}).code == sluice::kExitUsage);
    auto missing = sluicectl({"mask", "--seed-file", dir.file("none"), "x"});
    CHECK(missing.code != 0);
    CHECK(missing.out.empty());
    writeFile(dir.file("empty"), "");
    auto emptyHmac = sluicectl({"mask", "--seed-file", dir.file("empty"), "x"});
    CHECK(emptyHmac.code == sluice::kExitDataErr);
    CHECK(emptyHmac.out.empty());
    CHECK(emptyHmac.err.find("hmac-sha256 needs a secret seed") != std::string::npos);
    auto noOutput = sluicectl({"mask", "--output", "nope", "x"});  // the embedded configuration has 'analytics'
    CHECK(noOutput.code == sluice::kExitUsage);
    CHECK(noOutput.err.find("no derived output 'nope'") != std::string::npos);
}

TEST_CASE("decrypt --keys: a keyset as Tinkey wrote it, ciphertexts from an independent AES-SIV", "[cli][decrypt]")
{
    TempDir dir("sluicectl-decrypt");
    writeFile(dir.file("tinkey.json"), kTinkeyKeyset);
    auto r = sluicectl({"decrypt", "--keys", dir.file("tinkey.json")}, vectorInput());
    CHECK(r.code == 0);
    CHECK(r.out == expectedPlaintexts());
    CHECK(r.err.empty());

    // Values as arguments; --json.
    auto json = sluicectl({"decrypt", "--keys", dir.file("tinkey.json"), "--json", kVectors[0].first, kVectors[1].first});
    CHECK(json.code == 0);
    CHECK(json.out == "{\"input\":1,\"plaintext\":\"msg\"}\n{\"input\":2,\"plaintext\":\"alice@example.com\"}\n");
}

TEST_CASE("decrypt --keys: every export form sluicectl writes or accepts", "[cli][decrypt]")
{
    TempDir dir("sluicectl-decrypt");
    const std::string line = std::string(R"({"keyLink": "6f1c2b1e-8d7a-4d47-9a55-0c7c9e3b2f10", "contract": "acme/checkout/1.0.0", )") +
                             R"("createdAt": 1763712000123, "expiresAt": 1763798400123, "keyset": )" + kKeysetOneLine + "}";
    std::string quoted;
    for (char c : std::string(kKeysetOneLine)) {
        if (c == '"')
            quoted += '"';
        quoted += c;
    }
    const std::map<std::string, std::string> files = {
        {"export.jsonl", "{\"keyLink\": \"00000000-0000-4000-8000-000000000000\", \"keyset\": " +
                             std::string(R"({"primaryKeyId": 1, "key": [{"keyData": {"typeUrl": "type.googleapis.com/google.crypto.tink.AesSivKey", "value": "EkAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/", "keyMaterialType": "SYMMETRIC"}, "status": "ENABLED", "keyId": 1, "outputPrefixType": "TINK"}]})") +
                             "}\n\n" + line + "\n"},
        {"export.csv", "keyLink,encryptionKey,policyId,expiresAt\n\"6f1c2b1e-8d7a-4d47-9a55-0c7c9e3b2f10\",\"" + quoted +
                           "\",\"acme/checkout/1.0.0\",\"1763798400123\"\n"},
        {"export-crlf-bom.csv", "\xEF\xBB\xBFkeyLink,encryptionKey,policyId,expiresAt\r\n\"l\",\"" + quoted + "\",\"p\",\"1\"\r\n"},
        {"array.json", "[" + line + ", " + std::string(kKeysetOneLine) + "]"},
        {"one-line.json", line},
    };
    for (const auto& [name, content] : files) {
        INFO(name);
        writeFile(dir.file(name), content);
        auto r = sluicectl({"decrypt", "--keys", dir.file(name)}, vectorInput());
        CHECK(r.code == 0);
        CHECK(r.out == expectedPlaintexts());
        CHECK(r.err.empty());
    }

    // A keyset with a TINK and a RAW key: each decrypts its own values.
    writeFile(dir.file("two.json"), std::string(R"({"primaryKeyId": 7, "key": [)") + kRawKey + "," +
                                        std::string(kKeysetOneLine).substr(std::string(kKeysetOneLine).find("{\"keyData\"")));
    auto two = sluicectl({"decrypt", "--keys", dir.file("two.json"), kRawCiphertext, kVectors[2].first});
    CHECK(two.code == 0);
    CHECK(two.out == "raw value\nann@example.com\n");
}

TEST_CASE("decrypt --keys: values that do not decrypt give a message, never garbage", "[cli][decrypt]")
{
    TempDir dir("sluicectl-decrypt");
    writeFile(dir.file("tinkey.json"), kTinkeyKeyset);
    std::string altered = kVectors[1].first;
    altered[10] = altered[10] == 'A' ? 'B' : 'A';
    const std::string input = std::string(kVectors[0].first) + "\n" + altered + "\nnot base64!\n" +
                              "AQAAAAEAAAAAAAAAAAAAAAAAAAAAAA==\n" + kVectors[2].first + "\n";
    auto r = sluicectl({"decrypt", "--keys", dir.file("tinkey.json")}, input);
    CHECK(r.code == sluice::kExitDataErr);
    CHECK(r.out == "msg\n\n\n\nann@example.com\n");  // one line per input, empty for a failure
    CHECK(r.err.find("value 2: the value does not decrypt under key id 1919301694") != std::string::npos);
    CHECK(r.err.find("value 3: not a Base64 Tink ciphertext") != std::string::npos);
    CHECK(r.err.find("value 4: no key in " + dir.file("tinkey.json") + " has key id 1") != std::string::npos);
    CHECK(r.err.find("3 value(s) in 3 of 5 input(s) could not be decrypted") != std::string::npos);

    auto json = sluicectl({"decrypt", "--keys", dir.file("tinkey.json"), "--json", altered});
    CHECK(json.code == sluice::kExitDataErr);
    CHECK(json.out.find("{\"input\":1,\"error\":\"the value does not decrypt") == 0);
    CHECK(json.out.find("plaintext") == std::string::npos);

    writeFile(dir.file("bad.json"), "{\"not\": \"a keyset\"}");
    CHECK(sluicectl({"decrypt", "--keys", dir.file("bad.json"), "x"}).code == sluice::kExitDataErr);
    CHECK(sluicectl({"decrypt", "--keys", dir.file("missing.json"), "x"}).code == sluice::kExitIoErr);
    writeFile(dir.file("garbage.txt"), "hello");
    auto garbage = sluicectl({"decrypt", "--keys", dir.file("garbage.txt"), "x"});
    CHECK(garbage.code == sluice::kExitDataErr);
    CHECK(garbage.err.find("not a key export") != std::string::npos);
}

TEST_CASE("send: requests that are never answered are reported and the exit code says so", "[cli][send]")
{
    TempDir dir("sluicectl-send");
    // An ipc endpoint nobody listens on: requests queue, are retried, then given up.
    const std::string endpoint = "ipc://" + dir.file("nobody.sock");
    const std::string input = "{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}\n";
    const auto start = std::chrono::steady_clock::now();
    auto r = sluicectl({"send", "--endpoint", endpoint, "--events-per-message", "2", "--timeout", "50ms",
                        "--give-up", "300ms", "--producer-id", "test-producer"},
                       input);
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(r.code == sluice::kExitTempFail);
    CHECK(r.out.find("sent 3 event(s) in 2 request(s)") != std::string::npos);
    CHECK(r.out.find("as producer test-producer") != std::string::npos);
    CHECK(r.out.find("acknowledged: 0 request(s)") != std::string::npos);
    CHECK(r.out.find("unanswered: 2") != std::string::npos);
    CHECK(r.err.find("2 request(s) were neither acknowledged nor rejected") != std::string::npos);
    CHECK(took < std::chrono::seconds(5));

    auto json = sluicectl({"send", "--endpoint", endpoint, "--timeout", "50ms", "--give-up", "200ms", "--json"},
                          "{\"a\":1}\n");
    CHECK(json.code == sluice::kExitTempFail);
    CHECK(json.out.find("\"unanswered\":1") != std::string::npos);
    CHECK(json.out.find("\"acknowledged\":0") != std::string::npos);

    auto quiet = sluicectl({"send", "--endpoint", endpoint, "--timeout", "50ms", "--give-up", "100ms", "-q"},
                           "{\"a\":1}\n");
    CHECK(quiet.code == sluice::kExitTempFail);
    CHECK(quiet.out.empty());

    CHECK(sluicectl({"send", "--endpoint", "nonsense://x"}, "{}\n").code == sluice::kExitUsage);
    CHECK(sluicectl({"send", dir.file("missing.jsonl")}).code == sluice::kExitIoErr);
}

TEST_CASE("check-config: the same verdict as sluiced --check-config", "[cli][config]")
{
    TempDir dir("sluicectl-config");
    auto embedded = sluicectl({"check-config"});
    CHECK(embedded.code == 0);
    CHECK(embedded.out ==
          "configuration OK (embedded): 1 contract(s), 1 derived output(s), 1 aggregation(s)\n");

    writeFile(dir.file("bad.conf"), "[batch]\nmax_delay = forever\n[pipeline]\ncontracts = builtin:\n[ingest]\npull = tcp://127.0.0.1:0\n");
    auto bad = sluicectl({"check-config", "--config", dir.file("bad.conf")});
    CHECK(bad.code == sluice::kExitConfig);
    CHECK(bad.err.find("batch.max_delay") != std::string::npos);
    CHECK(sluicectl({"check-config", "--config", dir.file("missing.conf")}).code == sluice::kExitConfig);
    CHECK(sluicectl({"check-config", "--no-such-flag"}).code == sluice::kExitUsage);
    CHECK(sluicectl({"check-config", "--demo"}).code == sluice::kExitUsage);
}

TEST_CASE("commands that need the database say when there is none", "[cli]")
{
    TempDir dir("sluicectl-nodb");
    for (std::vector<std::string> cmd : {std::vector<std::string>{"keys", "export"},
                                         {"decrypt", "--contract", "acme/checkout/1.0.0"},
                                         {"forget", "--key-link", "x"}}) {
        cmd.push_back("--state-dir");
        cmd.push_back(dir.file("state"));
        auto r = sluicectl(cmd);
        INFO(cmd[0]);
        CHECK(r.code == sluice::kExitUnavailable);
        CHECK(r.err.find("no database at " + dir.file("state") + "/sluice.db") != std::string::npos);
    }
    writeFile(dir.file("bad.conf"), "[nonsense]\nkey = 1\n");
    CHECK(sluicectl({"keys", "export", "--config", dir.file("bad.conf")}).code == sluice::kExitConfig);
}

