// sluicectl bench --reprocess: how fast `sluicectl reprocess` recomputes an aggregation from a
// stored history, against the daemon's ingest rate measured in the same invocation (issue 14:
// a reprocess runs at least at the ingest rate).
//
// It starts a sluiced of its own (a temp directory, ipc endpoints, the reference pipeline with
// its aggregation in the shape asked for), fills it with --events events of the reference
// workload whose event times are 1 ms apart and end two hours before now, then sends one event
// at now so that every window of the history is final, and stops the daemon. Each round then
// runs `sluicectl reprocess` of that history as a child (its CPU time and peak memory are its
// own, from wait4) and, unless --no-daemon, the daemon's reference benchmark (`sluicectl bench
// --json`, closed loop, the same window shape) as another child, in alternating order. Medians
// are printed.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/bench.h"
#include "cli/bench_child.h"
#include "core/time_format.h"
#include "ingest/producer.h"
#include "privacy/random.h"
#include "workload/generator.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;
using Json = nlohmann::ordered_json;
using SteadyClock = std::chrono::steady_clock;

constexpr int kProducers = 2;
constexpr uint32_t kEventsPerMessage = 100;

struct Options {
    uint64_t events = 1'000'000;
    std::string aggregation = "tumbling";
    int rounds = 3;
    bool daemon = true;
    double daemonSeconds = 10;
    bool complete = false;
    bool keep = false;
    bool json = false;
    std::string sluiced;
};

double secondsSince(SteadyClock::time_point start)
{
    return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// A sluiced of our own in `dir`, for the fill.
class Daemon {
public:
    ~Daemon() { stop(); }

    bool start(const std::string& sluiced, const fs::path& config, const fs::path& log)
    {
        pid_ = ::fork();
        if (pid_ == 0) {
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(fd, STDOUT_FILENO);
            ::dup2(fd, STDERR_FILENO);
            ::execl(sluiced.c_str(), sluiced.c_str(), "--config", config.c_str(), nullptr);
            std::_Exit(127);
        }
        const auto deadline = SteadyClock::now() + std::chrono::seconds(30);
        while (SteadyClock::now() < deadline) {
            std::ifstream in(log);
            const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            if (text.find(" ready: ") != std::string::npos)
                return true;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                std::cerr << "sluicectl bench: sluiced exited:\n" << text;
                pid_ = -1;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        std::cerr << "sluicectl bench: sluiced did not become ready within 30 s (" << log.string() << ")\n";
        return false;
    }

    // SIGTERM: the daemon drains and commits what it holds. True when it exited 0.
    bool stop()
    {
        if (pid_ <= 0)
            return true;
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }

private:
    pid_t pid_ = -1;
};

// Sends `events` reference-workload events whose times run from `baseMs` 1 ms apart, over
// kProducers acknowledged producers. False when any event was not accepted.
bool fill(const std::string& endpoint, uint64_t events, int64_t baseMs)
{
    std::atomic<uint64_t> accepted{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (int p = 0; p < kProducers; ++p) {
        threads.emplace_back([&, p] {
            ingest::AckProducer::Options ao;
            ao.endpoint = endpoint;
            ao.window = 64;
            ao.timeoutMs = 30'000;
            auto producer = ingest::AckProducer::connect(ao);
            if (!producer) {
                std::cerr << "sluicectl bench: " << producer.status().message() << "\n";
                failed = true;
                return;
            }
            // Producer p sends events p, p + kProducers, ...: together, one event per ms.
            workload::Options wo;
            wo.seed = 2000 + static_cast<uint64_t>(p);
            wo.baseTimeMs = baseMs + p;
            wo.stepMs = kProducers;
            workload::Generator gen(wo);
            const uint64_t mine = events / kProducers + (static_cast<uint64_t>(p) < events % kProducers ? 1 : 0);
            std::string body;
            for (uint64_t sent = 0; sent < mine && !failed;) {
                const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kEventsPerMessage, mine - sent));
                body.clear();
                for (uint32_t i = 0; i < n; ++i) {
                    gen.next(body);
                    body += '\n';
                }
                if (!(*producer)->send(body, n)) {
                    failed = true;
                    return;
                }
                sent += n;
            }
            if (!(*producer)->flush())
                failed = true;
            accepted += (*producer)->report().accepted;
        });
    }
    for (std::thread& t : threads)
        t.join();
    return !failed && accepted == events;
}

struct Round {
    bool ok = false;
    double seconds = 0;
    double eventsRead = 0;
    double cpuSeconds = 0;
    double peakRssMiB = 0;
    std::string summary;  // reprocess's own line
};

Round reprocess(const Options& o, const fs::path& config)
{
    Round r;
    std::vector<std::string> argv = {selfExe(), "reprocess", "--config", config.string(), "--aggregation",
                                     "revenue_by_country"};
    if (o.complete)
        argv.emplace_back("--complete");
    std::string out;
    rusage usage{};
    const auto start = SteadyClock::now();
    const int code = runChild(argv, out, usage);
    r.seconds = secondsSince(start);
    r.cpuSeconds = cpuSeconds(usage);
    r.peakRssMiB = static_cast<double>(usage.ru_maxrss) / 1024.0;
    while (!out.empty() && out.back() == '\n')
        out.pop_back();
    r.summary = out;
    // "reprocessed NAME (...): N events read ..."
    const size_t colon = out.find("): ");
    if (code != 0 || colon == std::string::npos) {
        std::cerr << "sluicectl bench: sluicectl reprocess exited " << code << "\n";
        return r;
    }
    r.eventsRead = std::strtod(out.c_str() + colon + 3, nullptr);
    r.ok = r.eventsRead > 0;
    return r;
}

// The daemon's reference benchmark (closed loop) in the same window shape.
Json daemonBench(const Options& o)
{
    std::vector<std::string> args = {"--json", "--duration", std::to_string(o.daemonSeconds), "--aggregation",
                                     o.aggregation};
    if (!o.sluiced.empty()) {
        args.emplace_back("--sluiced");
        args.push_back(o.sluiced);
    }
    return benchChild(args);
}

std::string findSluiced()
{
    const fs::path self = selfExe();
    std::error_code ec;
    for (const fs::path& candidate : {self.parent_path() / "sluiced", self.parent_path().parent_path() / "sluiced"})
        if (fs::exists(candidate, ec))
            return candidate.string();
    return {};
}

double loadAverage()
{
    double load = 0;
    std::ifstream("/proc/loadavg") >> load;
    return load;
}

}  // namespace

int runBenchReprocess(const std::vector<std::string>& args)
{
    Options o;
    po::options_description desc("sluicectl bench --reprocess [options]");
    desc.add_options()
        ("help,h", "print this help")
        ("reprocess", "this benchmark")
        ("events", po::value(&o.events), "stored events to reprocess (default 1,000,000)")
        ("aggregation", po::value(&o.aggregation),
         "window shape: tumbling (default: the built-in pipeline), sliding (5m every 1m), session (30m gap by "
         "session_id)")
        ("complete", po::bool_switch(&o.complete), "reprocess with --complete (every event counts)")
        ("rounds", po::value(&o.rounds), "rounds; medians are printed (default 3)")
        ("no-daemon", "do not measure the daemon's ingest rate")
        ("daemon-duration", po::value(&o.daemonSeconds), "measured seconds of each daemon run (default 10)")
        ("sluiced", po::value(&o.sluiced), "sluiced binary (default: next to sluicectl)")
        ("keep", po::bool_switch(&o.keep), "keep the temp directory with the history")
        ("json", po::bool_switch(&o.json), "print the results as one JSON object");
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(desc).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "sluicectl bench: " << e.what() << "\n" << desc;
        return 64;
    }
    if (vm.count("help")) {
        std::cout << desc;
        return 0;
    }
    o.daemon = !vm.count("no-daemon");
    if (o.aggregation != "tumbling" && o.aggregation != "sliding" && o.aggregation != "session") {
        std::cerr << "sluicectl bench: --aggregation takes tumbling, sliding or session, not '" << o.aggregation << "'\n";
        return 64;
    }
    if (o.events < 1000 || o.rounds < 1) {
        std::cerr << "sluicectl bench: --events must be at least 1000 and --rounds at least 1\n";
        return 64;
    }
    if (o.sluiced.empty())
        o.sluiced = findSluiced();
    if (o.sluiced.empty()) {
        std::cerr << "sluicectl bench: cannot find sluiced; pass --sluiced\n";
        return 69;
    }

    // The history: a daemon of our own, filled once.
    char tmpl[] = "/tmp/sluice-bench-reprocess-XXXXXX";
    if (!::mkdtemp(tmpl)) {
        std::cerr << "sluicectl bench: cannot make a temp directory\n";
        return 73;
    }
    const fs::path dir = tmpl;
    struct Cleanup {
        fs::path dir;
        bool keep;
        ~Cleanup()
        {
            std::error_code ec;
            if (!keep)
                fs::remove_all(dir, ec);
        }
    } cleanup{dir, o.keep};
    fs::create_directories(dir / "state");
    {
        auto key = privacy::randomBytes(32);
        if (!key) {
            std::cerr << "sluicectl bench: " << key.status().message() << "\n";
            return 70;
        }
        std::ofstream k(dir / "state" / "master.key", std::ios::binary);
        k.write(reinterpret_cast<const char*>(key->data()), static_cast<std::streamsize>(key->size()));
        fs::permissions(dir / "state" / "master.key", fs::perms::owner_read | fs::perms::owner_write);
    }
    const fs::path config = dir / "sluiced.conf";
    const std::string router = "ipc://" + (dir / "router").string();
    {
        std::ofstream c(config);
        c << "[service]\nstate_dir = " << (dir / "state").string() << "\n"
          << "[ingest]\npull = ipc://" << (dir / "pull").string() << "\nrouter = " << router << "\n"
          << "[privacy]\nmaster_key_file = master.key\n"
          << "[pipeline]\n" << benchPipelineConfig(o.aggregation, dir);
    }
    const int64_t nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    const int64_t baseMs = nowMs - 2 * 3'600'000 - static_cast<int64_t>(o.events);
    std::cerr << "bench: storing " << o.events << " events (event times " << isoTimeMs(baseMs) << " to "
              << isoTimeMs(baseMs + static_cast<int64_t>(o.events)) << ", then one at now)...\n";
    double fillSeconds = 0;
    {
        Daemon daemon;
        if (!daemon.start(o.sluiced, config, dir / "sluiced.log"))
            return 69;
        const auto start = SteadyClock::now();
        // The history, then one event at now: its watermark makes every window of the history final.
        if (!fill(router, o.events, baseMs) || !fill(router, 1, nowMs)) {
            std::cerr << "sluicectl bench: the daemon did not accept every event (" << (dir / "sluiced.log").string()
                      << ")\n";
            return 69;
        }
        fillSeconds = secondsSince(start);
        if (!daemon.stop()) {
            std::cerr << "sluicectl bench: sluiced did not stop cleanly\n";
            return 69;
        }
    }

    std::vector<Round> rounds;
    std::vector<Json> daemons;
    std::vector<double> loads;
    for (int i = 0; i < o.rounds; ++i) {
        loads.push_back(loadAverage());
        for (int step = 0; step < 2; ++step) {
            if ((step == 0) == (i % 2 == 0)) {
                std::cerr << "bench: round " << i + 1 << " of " << o.rounds << ", sluicectl reprocess\n";
                Round r = reprocess(o, config);
                if (!r.ok)
                    return 1;
                rounds.push_back(std::move(r));
            } else if (o.daemon) {
                std::cerr << "bench: round " << i + 1 << " of " << o.rounds << ", the daemon (sluicectl bench)\n";
                Json d = daemonBench(o);
                if (d.is_null() || !d.contains("committed_per_s")) {
                    std::cerr << "sluicectl bench: the daemon's benchmark failed\n";
                    return 1;
                }
                daemons.push_back(std::move(d));
            }
        }
    }

    std::vector<double> rate, seconds, cpu, rss, daemonRate, daemonCpu;
    for (const Round& r : rounds) {
        rate.push_back(r.eventsRead / r.seconds);
        seconds.push_back(r.seconds);
        cpu.push_back(r.cpuSeconds * 1e6 / r.eventsRead);
        rss.push_back(r.peakRssMiB);
    }
    for (const Json& d : daemons) {
        daemonRate.push_back(d.at("committed_per_s").get<double>());
        daemonCpu.push_back(d.at("cpu_s_per_million").get<double>());
    }
    const double events = rounds.front().eventsRead;
    const double ratio = o.daemon && median(daemonRate) > 0 ? median(rate) / median(daemonRate) : 0;
    if (o.json) {
        Json j;
        j["aggregation"] = o.aggregation;
        j["complete"] = o.complete;
        j["events"] = events;
        j["rounds"] = o.rounds;
        j["fill_seconds"] = fillSeconds;
        j["reprocess_events_per_s"] = median(rate);
        j["reprocess_seconds"] = median(seconds);
        j["reprocess_cpu_us_per_event"] = median(cpu);
        j["reprocess_peak_rss_mib"] = median(rss);
        if (o.daemon) {
            j["daemon_committed_per_s"] = median(daemonRate);
            j["daemon_cpu_us_per_event"] = median(daemonCpu);
            j["ratio"] = ratio;
        }
        j["load_average"] = loads;
        j["summary"] = rounds.back().summary;
        std::printf("%s\n", j.dump().c_str());
        return 0;
    }
    std::printf("reprocess benchmark: %.0f stored events, %s windows%s, medians of %d round(s)\n", events,
                o.aggregation.c_str(), o.complete ? ", --complete" : "", o.rounds);
    std::printf("  history stored in %.1f s (%.0f events/s, acknowledged, 2 producers)\n", fillSeconds,
                static_cast<double>(o.events) / fillSeconds);
    std::printf("  sluicectl reprocess  %10.0f events/s  %6.2f s  %6.2f CPU µs/event  peak RSS %.1f MiB\n",
                median(rate), median(seconds), median(cpu), median(rss));
    if (o.daemon)
        std::printf("  daemon (bench)       %10.0f events/s            %6.2f CPU µs/event   ratio %.2f\n",
                    median(daemonRate), median(daemonCpu), ratio);
    std::printf("  per round (events/s):");
    for (size_t i = 0; i < rounds.size(); ++i)
        std::printf(" %.0f%s", rate[i],
                    i < daemonRate.size() ? ("/" + std::to_string(static_cast<long>(daemonRate[i]))).c_str() : "");
    std::printf("\n  load average (1 min) at each round:");
    for (double l : loads)
        std::printf(" %.2f", l);
    std::printf("\n  %s\n", rounds.back().summary.c_str());
    return 0;
}

}  // namespace sluice::cli
