#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "privacy/secret.h"
#include "test_util.h"

using namespace sluice;
using namespace sluice::privacy;

namespace {

const std::string kHexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

std::string rawKey()
{
    std::string key;
    for (int i = 0; i < 32; ++i)
        key += static_cast<char>(i);
    return key;
}

}  // namespace

TEST_CASE("SecretBytes moves, wipes and compares", "[secret]")
{
    SecretBytes a = SecretBytes::copyOf("abc");
    CHECK(a.size() == 3);
    CHECK(a.view() == "abc");
    SecretBytes b = std::move(a);
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move)
    CHECK(b.view() == "abc");
    SecretBytes c = b.clone();
    CHECK(secretEquals(b, c));
    c = SecretBytes::copyOf("abd");
    CHECK_FALSE(secretEquals(b, c));
    c.truncate(2);
    CHECK(c.view() == "ab");
    CHECK(SecretBytes(4).view() == std::string(4, '\0'));
    static_assert(!std::is_copy_constructible_v<SecretBytes>);
    static_assert(!std::is_copy_assignable_v<SecretBytes>);
}

TEST_CASE("master key file: 32 raw bytes or 64 hex digits with an optional newline", "[secret]")
{
    privacy::testing::TempDir dir;
    for (const std::string& content : {rawKey(), kHexKey, kHexKey + "\n", kHexKey + "\r\n"}) {
        auto key = readSecretFile(dir.write("key", content), 32);
        INFO("content size " << content.size());
        REQUIRE(key);
        CHECK(key->view() == rawKey());
    }
    // Upper-case hex is hex too.
    std::string upper = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
    CHECK(readSecretFile(dir.write("upper", upper), 32)->view() == rawKey());
}

TEST_CASE("master key file errors name the file and the problem, not the content", "[secret]")
{
    privacy::testing::TempDir dir;
    auto missing = readSecretFile(dir.file("absent"), 32);
    CHECK(missing.status().code() == StatusCode::kNotFound);
    CHECK(missing.status().message().find(dir.file("absent")) != std::string::npos);

    const std::string secretish = "zzzz-this-is-not-hex-but-64-characters-long-zzzzzzzzzzzzzzzzzzzz";
    REQUIRE(secretish.size() == 64);
    auto badHex = readSecretFile(dir.write("badhex", secretish), 32);
    CHECK(badHex.status().code() == StatusCode::kInvalidArgument);
    CHECK(badHex.status().message().find("hex") != std::string::npos);
    CHECK(badHex.status().message().find("zzzz") == std::string::npos);

    for (const std::string& content : {rawKey() + "\n", kHexKey + "\n\n", kHexKey.substr(2), std::string("x")}) {
        auto wrong = readSecretFile(dir.write("wrong", content), 32);
        INFO("content size " << content.size());
        CHECK(wrong.status().code() == StatusCode::kInvalidArgument);
        CHECK(wrong.status().message().find("32 raw bytes or 64 hex digits") != std::string::npos);
        CHECK(wrong.status().message().find(dir.file("wrong")) != std::string::npos);
    }
    CHECK(readSecretFile(dir.write("empty", ""), 32).status().code() == StatusCode::kInvalidArgument);
    CHECK(readSecretFile(dir.file(""), 32).status().code() == StatusCode::kInvalidArgument);  // a directory

    if (::geteuid() != 0) {
        std::string unreadable = dir.write("unreadable", kHexKey);
        ::chmod(unreadable.c_str(), 0);
        CHECK(readSecretFile(unreadable, 32).status().code() == StatusCode::kPermission);
    }
}

TEST_CASE("seed files of any size lose one trailing newline", "[secret]")
{
    privacy::testing::TempDir dir;
    CHECK(readSecretFile(dir.write("s1", "my seed\n"), 0)->view() == "my seed");
    CHECK(readSecretFile(dir.write("s2", "my seed\r\n"), 0)->view() == "my seed");
    CHECK(readSecretFile(dir.write("s3", "my seed\n\n"), 0)->view() == "my seed\n");
    CHECK(readSecretFile(dir.write("s4", "my seed"), 0)->view() == "my seed");
    CHECK(readSecretFile(dir.write("s5", "\n"), 0).status().code() == StatusCode::kInvalidArgument);
    // allowEmpty (a murmur3 seed): an empty file, or a lone newline, is an empty secret.
    CHECK(readSecretFile(dir.write("s6", ""), 0, true)->empty());
    CHECK(readSecretFile(dir.write("s7", "\n"), 0, true)->empty());
    CHECK(readSecretFile(dir.write("s8", "my seed\n"), 0, true)->view() == "my seed");
    CHECK(readSecretFile(dir.write("s9", ""), 32, true).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("writeNewSecretFile creates mode 0600 and never replaces", "[secret]")
{
    privacy::testing::TempDir dir;
    std::string path = dir.file("master.key");
    REQUIRE(writeNewSecretFile(path, kHexKey + "\n"));
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(readSecretFile(path, 32)->view() == rawKey());
    Status again = writeNewSecretFile(path, "other");
    CHECK(again.code() == StatusCode::kAlreadyExists);
    CHECK(readSecretFile(path, 32)->view() == rawKey());
    CHECK(writeNewSecretFile(dir.file("no/such/dir"), "x").code() == StatusCode::kIoError);
}
