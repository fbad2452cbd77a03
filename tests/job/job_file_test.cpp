// Job files: what a correct one becomes, and the wrong ones refused with the place at fault
// before any row is read.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "job/job_file.h"
#include "support/temp_dir.h"

namespace sluice::job {
namespace {

using Json = nlohmann::ordered_json;
using testing::TempDir;

Json minimal()
{
    return Json::parse(R"({
      "id": "nightly",
      "contract": "acme/checkout/1.0.0",
      "input": {"files": "in/*.csv", "format": "csv"},
      "timestamp": {"field": "ts", "format": "%m/%d/%Y %H:%M", "zone": "Europe/Berlin"},
      "consent": {"field": "consent", "values": {"yes": [0, 1, 2], "no": []}, "default": [0]},
      "outputs": {"encrypted": "out/events.csv", "keys": {"csv": "out/keys.csv"}, "rejects": "out/rejects.jsonl"}
    })");
}

Result<JobSpec> load(const TempDir& dir, const Json& j)
{
    dir.write("in/a.csv", "session_id,country,total,ts,consent\n");
    dir.write("in/b.csv", "session_id,country,total,ts,consent\n");
    return loadJobFile(dir.write("job.json", j.dump()));
}

}  // namespace

TEST_CASE("job file: a minimal job and its defaults", "[job][file]")
{
    TempDir dir;
    auto job = load(dir, minimal());
    REQUIRE(job.isOk());
    CHECK(job->id == "nightly");
    CHECK(job->group == "nightly");  // the group defaults to the id
    CHECK(job->input.files == std::vector<std::string>{dir.file("in/a.csv"), dir.file("in/b.csv")});
    CHECK(job->outputs.encrypted.path == dir.file("out/events.csv"));
    CHECK(job->outputs.encrypted.format == FileFormat::kCsv);
    CHECK(job->outputs.rejects.format == FileFormat::kJsonl);
    CHECK(job->keyStore == dir.file("sluice-keys/nightly.keys.db"));
    CHECK(job->workDir == dir.file(".nightly.sluice-job"));
    CHECK(job->maxRejectShare == 0.10);
    CHECK(job->chunkRows == 0);
    CHECK(job->runChunkRows() == 4096);
    CHECK(job->sendChunkRows() == 8192);
    CHECK(job->keyCacheEntries == 100'000);
    CHECK(job->keyDirectoryEntries == 150'000);
}

TEST_CASE("job file: wrong files are refused, naming the place at fault", "[job][file]")
{
    struct Case {
        const char* what;
        const char* pointer;  // JSON pointer to change
        Json value;
        const char* message;  // expected in the error
    };
    const Case cases[] = {
        {"unknown top-level key", "/colour", "blue", "colour: unknown key"},
        {"unknown input key", "/input/sheet", 1, "input.sheet: unknown key"},
        {"missing contract", "/contract", "acme/nothing/1.0.0", "no contract acme/nothing/1.0.0"},
        {"bad time zone", "/timestamp/zone", "Mars/Olympus", "timestamp"},
        {"bad format", "/input/format", "xlsx", "input.format"},
        {"no input file", "/input/files", "in/*.tsv", "matches no file"},
        {"reject share out of range", "/max_reject_share", 2, "max_reject_share"},
        {"key directory too small", "/key_directory_entries", 10, "key_directory_entries"},
        {"key cache not a number", "/key_cache_entries", "many", "key_cache_entries"},
        {"bad consent level", "/consent/values/yes", Json::array({0, 99}), "consent.values.yes"},
        {"an output twice", "/outputs/rejects", "out/events.csv", "named twice"},
        {"an input as output", "/outputs/rejects", "in/a.csv", "also an input"},
        {"bad id", "/id", "../escape", "id"},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        TempDir dir;
        Json j = minimal();
        j[Json::json_pointer(c.pointer)] = c.value;
        auto job = load(dir, j);
        REQUIRE_FALSE(job.isOk());
        CHECK(job.status().message().find(c.message) != std::string::npos);
        CHECK(job.status().message().find(dir.file("job.json")) == 0);
    }
    TempDir dir;
    Json j = minimal();
    j.erase("consent");
    CHECK_FALSE(load(dir, j).isOk());
    CHECK_FALSE(loadJobFile(dir.write("broken.json", "{\"id\": ")).isOk());
}

TEST_CASE("job file: the header against the contract", "[job][file]")
{
    TempDir dir;
    auto job = load(dir, minimal());
    REQUIRE(job.isOk());
    CHECK(checkHeader(*job, {"session_id", "country", "total", "ts", "consent"}, "a.csv").isOk());
    const Status unknown = checkHeader(*job, {"session_id", "country", "total", "ts", "consent", "shoe"}, "a.csv");
    CHECK(unknown.message().find("'shoe' is not a field") != std::string::npos);
    const Status missing = checkHeader(*job, {"session_id", "total", "ts", "consent"}, "a.csv");
    CHECK(missing.message().find("'country'") != std::string::npos);
    const Status noTime = checkHeader(*job, {"session_id", "country", "total", "consent"}, "a.csv");
    CHECK(noTime.message().find("'ts'") != std::string::npos);
    const Status twice = checkHeader(*job, {"session_id", "country", "country", "total", "ts", "consent"}, "a.csv");
    CHECK(twice.message().find("twice") != std::string::npos);
}

}  // namespace sluice::job
