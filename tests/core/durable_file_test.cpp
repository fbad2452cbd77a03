#include "core/durable_file.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/temp_dir.h"

using namespace sluice;
using sluice::testing::TempDir;

namespace {

std::string readAll(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

mode_t modeOf(const std::string& path)
{
    struct stat st{};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("a durable file is invisible under its final name until published", "[durable_file]")
{
    TempDir dir("sluice-durable");
    auto file = DurableFile::create(dir.file(".out.tmp"), 0640);
    REQUIRE(file.isOk());
    REQUIRE(file->write("hello ").isOk());
    REQUIRE(file->write("world\n").isOk());
    CHECK_FALSE(std::filesystem::exists(dir.file("out.jsonl")));
    REQUIRE(file->publish(dir.file("out.jsonl")).isOk());
    CHECK_FALSE(file->isOpen());
    CHECK_FALSE(std::filesystem::exists(dir.file(".out.tmp")));
    CHECK(readAll(dir.file("out.jsonl")) == "hello world\n");
}

TEST_CASE("an abandoned durable file is removed; a destroyed one stays for resuming", "[durable_file]")
{
    TempDir dir("sluice-durable");
    {
        auto file = DurableFile::create(dir.file("a.partial"), 0644);
        REQUIRE(file.isOk());
        REQUIRE(file->write("abc").isOk());
        file->remove();
    }
    CHECK_FALSE(std::filesystem::exists(dir.file("a.partial")));
    {
        auto file = DurableFile::create(dir.file("b.partial"), 0644);
        REQUIRE(file.isOk());
        REQUIRE(file->write("0123456789").isOk());
    }
    CHECK(readAll(dir.file("b.partial")) == "0123456789");
}

TEST_CASE("resume cuts a partial file to its checkpoint and writes on from there", "[durable_file]")
{
    TempDir dir("sluice-durable");
    const std::string partial = dir.write("b.partial", "0123456789");
    auto file = DurableFile::resume(partial, 0644, 4);
    REQUIRE(file.isOk());
    REQUIRE(file->write("xy").isOk());
    REQUIRE(file->publish(dir.file("b")).isOk());
    CHECK(readAll(dir.file("b")) == "0123xy");

    auto missing = DurableFile::resume(dir.file("none.partial"), 0644, 0);
    REQUIRE_FALSE(missing.isOk());
    CHECK(missing.status().code() == StatusCode::kCorruption);
    const std::string shorter = dir.write("c.partial", "01");
    auto cut = DurableFile::resume(shorter, 0644, 3);
    REQUIRE_FALSE(cut.isOk());
    CHECK(cut.status().code() == StatusCode::kCorruption);
    CHECK(cut.status().message().find("shorter than its checkpoint") != std::string::npos);
}

TEST_CASE("a private durable file is 0600 even when a wider file was left there", "[durable_file]")
{
    TempDir dir("sluice-durable");
    const std::string path = dir.write("keys.partial", "old");
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    auto file = DurableFile::create(path, 0600);
    REQUIRE(file.isOk());
    CHECK(modeOf(path) == 0600);
    CHECK(readAll(path).empty());
}

TEST_CASE("writeFileAtomically replaces a file whole, mode 0600; failures name the path", "[durable_file]")
{
    TempDir dir("sluice-durable");
    const std::string path = dir.write("state.json", "{\"old\":true}");
    REQUIRE(writeFileAtomically(path, "{\"new\":true}").isOk());
    CHECK(readAll(path) == "{\"new\":true}");
    CHECK(modeOf(path) == 0600);
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

    const Status s = writeFileAtomically(dir.file("no/such/dir/state.json"), "x");
    REQUIRE_FALSE(s.isOk());
    CHECK(s.code() == StatusCode::kIoError);
    CHECK(s.message().find("no/such/dir/state.json.tmp") != std::string::npos);
    CHECK(syncDirectory(dir.file("missing")).code() == StatusCode::kIoError);
    CHECK(syncDirectoryOf(path).isOk());
}
