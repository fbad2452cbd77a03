// sluicectl bench --job: the batch job on the reference workload (spec section 11's fields as a
// CSV file, 1M rows by default): CSV -> encrypted data + derived output + keys, in a new key
// group (every key made) and again in the same group (every key reused, output byte for byte the
// same), and CSV -> SQLite. Each run is a child `sluicectl job run`, so that its CPU time and peak
// memory are its own (wait4). Several rounds alternate the cases; medians are printed. With
// --daemon the daemon's own reference benchmark (sluicectl bench) runs in the same invocation,
// for the ratio the spec asks about.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/bench.h"
#include "cli/bench_child.h"
#include "cli/common.h"
#include "privacy/random.h"
#include "workload/generator.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;
using Json = nlohmann::ordered_json;

struct RunResult {
    bool ok = false;
    double seconds = 0;       // the job's own wall time
    double rowsPerSecond = 0;
    double cpuSeconds = 0;    // user + system of the child
    double peakRssMiB = 0;
    Json summary;
};

RunResult runJob(const std::string& jobFile, int workers)
{
    RunResult r;
    std::string out;
    rusage usage{};
    const int code = runChild({selfExe(), "job", "run", jobFile, "--json", "--force", "--progress", "none", "--workers",
                               std::to_string(workers)},
                              out, usage);
    r.cpuSeconds = cpuSeconds(usage);
    r.peakRssMiB = static_cast<double>(usage.ru_maxrss) / 1024.0;
    if (code != 0)
        return r;
    try {
        r.summary = Json::parse(out);
        r.seconds = r.summary.at("seconds").get<double>();
        r.rowsPerSecond = r.summary.at("rows_per_second").get<double>();
        r.ok = true;
    } catch (const std::exception&) {
        r.ok = false;
    }
    return r;
}

// Whether two files hold the same bytes (read in blocks: the benchmark's own memory stays small,
// and its children's peak RSS, which counts the parent's at fork, with it).
bool sameFiles(const std::string& a, const std::string& b)
{
    std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
    if (!fa || !fb)
        return false;
    std::vector<char> ba(1 << 16), bb(1 << 16);
    while (true) {
        fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
        fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
        if (fa.gcount() != fb.gcount() || std::memcmp(ba.data(), bb.data(), static_cast<size_t>(fa.gcount())) != 0)
            return false;
        if (!fa || !fb)
            return !fa && !fb;
    }
}

}  // namespace

namespace {

const Command kBenchJob = {
    "bench --job",
    "[options]",
    "The batch job on the reference workload as a CSV file: CSV -> encrypted data + derived output +\n"
    "keys in a new key group and again in the same group (output byte for byte the same), and CSV ->\n"
    "SQLite; each run a child `sluicectl job run`. Prints medians per case and the profile per stage.",
    R"(Exit codes: 0 done, 64 bad options, 70 a run failed or the re-run differed, 74 the input could not
be written.

Example:
  sluicectl bench --job --rows 1000000 --rounds 3 --daemon
)",
};

}  // namespace

int runBenchJob(const std::vector<std::string>& args, Io& io)
{
    uint64_t rows = 1'000'000;
    int rounds = 3;
    int workers = 2;
    int days = 1;
    bool keep = false, json = false, daemon = false;
    double daemonSeconds = 10;
    std::string dir;
    po::options_description options = optionGroup();
    options.add_options()
        ("job", "the batch-job benchmark (this one)")
        ("rows", po::value(&rows)->value_name("N"), "rows of the reference CSV (default 1000000)")
        ("rounds", po::value(&rounds)->value_name("N"), "rounds of every case; medians are printed (default 3)")
        ("workers", po::value(&workers)->value_name("N"), "transform lanes of the job (default 2)")
        ("days", po::value(&days)->value_name("N"),
         "UTC days the rows' times span, in order (default 1): a key per session and day")
        ("dir", po::value(&dir)->value_name("DIR"), "work here instead of a temp directory")
        ("daemon", po::bool_switch(&daemon), "also run the daemon's reference benchmark (sluicectl bench)")
        ("daemon-duration", po::value(&daemonSeconds)->value_name("SECONDS"), "its measured seconds (default 10)")
        ("keep", po::bool_switch(&keep), "keep the files")
        ("json", po::bool_switch(&json), "print the results as JSON");
    po::variables_map vm;
    if (!parseCommandLine(kBenchJob, args, options, vm, io))
        return kExitOk;
    if (rounds < 1 || rows < 1 || days < 1 || days > 365)
        throw Failure(kExitUsage, "--rows and --rounds must be positive, --days from 1 to 365");
    const bool ownDir = dir.empty();
    if (ownDir) {
        char tmpl[] = "/tmp/sluice-bench-job-XXXXXX";
        if (!::mkdtemp(tmpl))
            throw Failure(kExitIoErr, "cannot create a temp directory");
        dir = tmpl;
    }
    fs::create_directories(dir);
    const fs::path base(dir);

    // The input: the reference workload as CSV over `days` UTC days ending on 2026-11-21 (so one
    // key per session and day).
    const std::string csvPath = (base / "reference.csv").string();
    {
        constexpr int64_t kDayMs = 86'400'000;
        workload::Options wo;
        wo.baseTimeMs = 1'795'219'200'000 - (days - 1) * kDayMs;  // 2026-11-21T00:00:00Z
        // One day: its first 80,000 s (as before --days); more: the rows spread over them all.
        const int64_t span = days == 1 ? 80'000'000 : days * kDayMs;
        wo.stepMs = std::max<int64_t>(1, span / static_cast<int64_t>(rows));
        workload::Generator gen(wo);
        std::ofstream out(csvPath, std::ios::binary);
        std::string text(workload::Generator::csvHeader());
        text += '\n';
        for (uint64_t i = 0; i < rows; ++i) {
            gen.nextCsv(text);
            text += '\n';
            if (text.size() > (1 << 20)) {
                out << text;
                text.clear();
            }
        }
        out << text;
        std::string().swap(text);
        if (!out)
            throw Failure(kExitIoErr, "cannot write " + csvPath);
    }
    const uint64_t inputBytes = fs::file_size(csvPath);
    {
        auto key = privacy::randomBytes(32);
        std::ofstream k(base / "master.key", std::ios::binary);
        k.write(reinterpret_cast<const char*>(key->data()), static_cast<std::streamsize>(key->size()));
        fs::permissions(base / "master.key", fs::perms::owner_read | fs::perms::owner_write);
    }
    auto jobFile = [&](const std::string& name, const std::string& group, const Json& outputs) {
        Json j;
        j["id"] = name;
        j["group"] = group;
        j["contract"] = "acme/checkout/1.0.0";
        j["master_key_file"] = "master.key";
        j["key_store"] = "keys-" + name;
        j["input"] = {{"files", {"reference.csv"}}, {"format", "csv"}};
        j["timestamp"] = {{"field", "event_time"}};
        j["consent"] = {{"field", "consent"}, {"default", Json::array()}};
        j["outputs"] = outputs;
        const std::string path = (base / (name + ".json")).string();
        std::ofstream(path) << j.dump(2) << "\n";
        return path;
    };
    const Json files = {
        {"encrypted", "out-files/events.csv"},
        {"keys", {{"csv", "out-files/keys.csv"}}},
        {"derived",
         {{{"name", "analytics"}, {"purposes", {1, 2}}, {"mask", {{"fields", {"email"}}}}, {"path", "out-files/analytics.csv"}}}},
    };
    const std::string filesJob = jobFile("files", "bench", files);
    const std::string sqliteJob = jobFile("sqlite", "bench-sqlite", {{"database", "out-db/reference.db"}});

    struct Case {
        const char* name;
        std::vector<RunResult> runs;
    };
    Case newKeys{"files, new key group (every key made)", {}};
    Case sameKeys{"files, same key group (every key reused)", {}};
    Case sqlite{"SQLite target, new key group", {}};
    bool identical = true;
    for (int round = 0; round < rounds; ++round) {
        fs::remove_all(base / "keys-files");
        fs::remove_all(base / "keys-sqlite");
        newKeys.runs.push_back(runJob(filesJob, workers));
        const std::string first = (base / "first-events.csv").string();
        fs::rename(base / "out-files" / "events.csv", first);
        sameKeys.runs.push_back(runJob(filesJob, workers));
        identical = identical && sameFiles(first, (base / "out-files" / "events.csv").string());
        fs::remove(first);
        sqlite.runs.push_back(runJob(sqliteJob, workers));
        io.err << "round " << round + 1 << "/" << rounds << ": "
                  << static_cast<uint64_t>(newKeys.runs.back().rowsPerSecond) << ", "
                  << static_cast<uint64_t>(sameKeys.runs.back().rowsPerSecond) << ", "
                  << static_cast<uint64_t>(sqlite.runs.back().rowsPerSecond) << " rows/s\n";
    }

    Json daemonResult;
    if (daemon) {
        std::string out;
        rusage usage{};
        runChild({selfExe(), "bench", "--json", "--duration", std::to_string(daemonSeconds)}, out, usage);
        try {
            daemonResult = Json::parse(out);
        } catch (const std::exception&) {
            daemonResult = Json();
        }
    }

    Json result;
    result["rows"] = rows;
    result["input_bytes"] = inputBytes;
    result["workers"] = workers;
    result["rounds"] = rounds;
    result["rerun_identical"] = identical;
    Json cases = Json::array();
    bool allOk = true;
    for (Case* c : {&newKeys, &sameKeys, &sqlite}) {
        std::vector<double> rate, secs, cpu, rss;
        for (const RunResult& r : c->runs) {
            allOk = allOk && r.ok;
            rate.push_back(r.rowsPerSecond);
            secs.push_back(r.seconds);
            cpu.push_back(r.cpuSeconds);
            rss.push_back(r.peakRssMiB);
        }
        Json j;
        j["case"] = c->name;
        j["rows_per_second"] = median(rate);
        j["seconds"] = median(secs);
        j["cpu_seconds"] = median(cpu);
        j["cpu_us_per_row"] = median(cpu) * 1e6 / static_cast<double>(rows);
        j["peak_rss_mib"] = median(rss);
        if (!c->runs.empty() && c->runs.back().ok) {
            j["profile_seconds"] = c->runs.back().summary.at("profile_seconds");
            j["thread_cpu_seconds"] = c->runs.back().summary.at("cpu_seconds");
        }
        cases.push_back(j);
    }
    result["cases"] = cases;
    if (!daemonResult.is_null())
        result["daemon"] = daemonResult;

    if (json) {
        io.out << result.dump(2) << "\n";
    } else {
        print(io.out, "batch job benchmark: %llu rows of the reference workload (%.1f MiB CSV), %d lane(s), median of %d "
                    "round(s)\n",
                    static_cast<unsigned long long>(rows), static_cast<double>(inputBytes) / (1 << 20), workers, rounds);
        for (const Json& c : cases) {
            print(io.out, "  %-44s %9.0f rows/s  %6.2f s  CPU %5.2f us/row  peak RSS %5.1f MiB\n",
                        c["case"].get<std::string>().c_str(), c["rows_per_second"].get<double>(),
                        c["seconds"].get<double>(), c["cpu_us_per_row"].get<double>(), c["peak_rss_mib"].get<double>());
            if (c.contains("profile_seconds")) {
                const Json& p = c["profile_seconds"];
                print(io.out, "      profile (s): read %.2f  parse %.2f  transform %.2f  aggregate %.2f  store keys %.2f  "
                            "write %.2f  publish %.2f\n",
                            p["read"].get<double>(), p["parse"].get<double>(), p["transform"].get<double>(),
                            p["aggregate"].get<double>(), p.value("store_keys", 0.0), p["write"].get<double>(),
                            p["publish"].get<double>());
                print(io.out, "      waits (s): start %.2f  lanes wait for the reader %.2f, for the writer %.2f  "
                            "writer idle %.2f\n",
                            p.value("start", 0.0), p.value("wait_read", 0.0), p.value("wait_write", 0.0),
                            p.value("writer_idle", 0.0));
                print(io.out, "      lanes (s): parallel phases %.2f  lane-seconds waiting in them %.2f  caller "
                            "outside them %.2f\n",
                            p.value("phases", 0.0), p.value("lane_wait", 0.0), p.value("serial", 0.0));
                const Json& t = c["thread_cpu_seconds"];
                print(io.out, "      CPU (s): reader %.2f  transform (lanes) %.2f  key store %.2f  writer %.2f\n",
                            t["read"].get<double>(), t["transform"].get<double>(), t.value("store_keys", 0.0),
                            t["write"].get<double>());
            }
        }
        print(io.out, "  re-run in the same group byte-identical: %s\n", identical ? "yes" : "NO");
        if (!daemonResult.is_null())
            print(io.out, "  daemon (sluicectl bench): %s\n", daemonResult.dump().c_str());
    }
    if (ownDir && !keep)
        fs::remove_all(dir);
    else
        io.err << "files kept in " << dir << "\n";
    return allOk && identical ? kExitOk : kExitSoftware;
}

}  // namespace sluice::cli
