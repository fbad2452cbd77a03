// sluicectl bench --latency-table: acknowledgement latency against the batch delay.
//
// Measures the capacity C (closed loop, the built-in configuration), then for each max_delay
// runs open loop at C/4 and C/2 and prints p50/p99. Each measurement is a run of `sluicectl bench
// --json` in a child process with a daemon of its own, so that one measurement's queues, caches
// and WAL never carry into the next; C comes from the same session as the rates derived from it.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/bench.h"

namespace sluice::cli {

namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;

struct TableOptions {
    double durationS = 10;
    double warmupS = 3;
    int rounds = 1;
    std::vector<int> delaysMs{1, 5, 20, 200};
    std::string sluiced;
    bool json = false;
};

// Runs this program with `args` in a child; its stdout parsed as the JSON line `bench --json`
// prints. Empty on failure (the child's own stderr says why).
nlohmann::json benchChild(const std::vector<std::string>& args)
{
    std::error_code ec;
    const std::string self = fs::read_symlink("/proc/self/exe", ec).string();
    int fds[2];
    if (self.empty() || ::pipe(fds) != 0)
        return {};
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        return {};
    }
    if (pid == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
        std::vector<char*> argv{const_cast<char*>(self.c_str()), const_cast<char*>("bench")};
        for (const std::string& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        std::_Exit(127);
    }
    ::close(fds[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
        out.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return {};
    return nlohmann::json::parse(out, nullptr, false);
}

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Cell {
    int delayMs = 0;
    double fraction = 0;  // of C
    double rate = 0;
    std::vector<double> p50, p99, batch;
};

}  // namespace

int runBenchLatencyTable(const std::vector<std::string>& args)
{
    TableOptions o;
    std::string delays;
    po::options_description desc("sluicectl bench --latency-table [options]");
    desc.add_options()
        ("help,h", "print this help")
        ("latency-table", "p50/p99 acknowledgement latency against max_delay at C/4 and C/2")
        ("duration", po::value(&o.durationS), "measured seconds per cell (default 10)")
        ("warmup", po::value(&o.warmupS), "seconds before measuring, per cell (default 3)")
        ("rounds", po::value(&o.rounds), "rounds over the whole table; each cell is the median (default 1)")
        ("delays", po::value(&delays), "max_delay values in ms, comma-separated (default 1,5,20,200)")
        ("sluiced", po::value(&o.sluiced), "sluiced binary to start (default: next to sluicectl)")
        ("json", po::bool_switch(&o.json), "print the table as JSON");
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
    if (!delays.empty()) {
        o.delaysMs.clear();
        size_t at = 0;
        while (at <= delays.size()) {
            const size_t comma = std::min(delays.find(',', at), delays.size());
            try {
                o.delaysMs.push_back(std::stoi(delays.substr(at, comma - at)));
            } catch (const std::exception&) {
                std::cerr << "sluicectl bench: --delays takes milliseconds separated by commas\n";
                return 64;
            }
            at = comma + 1;
        }
    }
    if (o.rounds < 1 || o.durationS <= 0 || o.warmupS < 0) {
        std::cerr << "sluicectl bench: --rounds, --duration and --warmup must be positive\n";
        return 64;
    }

    std::vector<std::string> common{"--json", "--duration", std::to_string(o.durationS), "--warmup",
                                    std::to_string(o.warmupS)};
    if (!o.sluiced.empty()) {
        common.push_back("--sluiced");
        common.push_back(o.sluiced);
    }

    std::vector<double> capacities;
    std::vector<Cell> cells;
    for (int delay : o.delaysMs)
        for (double fraction : {0.25, 0.5})
            cells.push_back(Cell{delay, fraction, 0, {}, {}, {}});
    for (int round = 0; round < o.rounds; ++round) {
        std::cerr << "bench: round " << round + 1 << "/" << o.rounds << ": capacity (closed loop)...\n";
        const nlohmann::json c = benchChild(common);
        if (!c.is_object() || !c.contains("acknowledged_per_s")) {
            std::cerr << "sluicectl bench: the capacity run failed\n";
            return 1;
        }
        const double capacity = c["acknowledged_per_s"].get<double>();
        capacities.push_back(capacity);
        for (Cell& cell : cells) {
            cell.rate = capacity * cell.fraction;
            std::vector<std::string> a = common;
            a.insert(a.end(), {"--rate", std::to_string(static_cast<long>(cell.rate)), "--config-line", "[batch]",
                               "--config-line", "max_delay = " + std::to_string(cell.delayMs) + "ms"});
            std::cerr << "bench: max_delay " << cell.delayMs << " ms at " << static_cast<long>(cell.rate)
                      << " events/s...\n";
            const nlohmann::json r = benchChild(a);
            if (!r.is_object() || !r.contains("ack_p99_ms")) {
                std::cerr << "sluicectl bench: the run at max_delay " << cell.delayMs << " ms failed\n";
                return 1;
            }
            cell.p50.push_back(r["ack_p50_ms"].get<double>());
            cell.p99.push_back(r["ack_p99_ms"].get<double>());
            cell.batch.push_back(r["mean_batch"].get<double>());
        }
    }

    const double capacity = median(capacities);
    if (o.json) {
        nlohmann::json out;
        out["capacity_per_s"] = capacity;
        out["rounds"] = o.rounds;
        for (const Cell& cell : cells)
            out["cells"].push_back({{"max_delay_ms", cell.delayMs},
                                    {"fraction_of_capacity", cell.fraction},
                                    {"p50_ms", median(cell.p50)},
                                    {"p99_ms", median(cell.p99)},
                                    {"mean_batch", median(cell.batch)}});
        std::printf("%s\n", out.dump().c_str());
        return 0;
    }
    std::printf("sluice bench: acknowledgement latency against max_delay (reference workload, 4 producers)\n");
    std::printf("  capacity C      %.0f events/s (closed loop, median of %d)\n", capacity, o.rounds);
    std::printf("  max_delay   rate       p50 ms   p99 ms   mean batch\n");
    for (const Cell& cell : cells)
        std::printf("  %6d ms   C/%-7d %7.1f  %7.1f   %8.0f\n", cell.delayMs, cell.fraction == 0.25 ? 4 : 2,
                    median(cell.p50), median(cell.p99), median(cell.batch));
    return 0;
}

}  // namespace sluice::cli
