// sluicectl bench --latency-table: acknowledgement latency against the batch delay.
//
// Measures the capacity C (closed loop, the built-in configuration), then for each max_delay
// runs open loop at C/4 and C/2 and prints p50/p99. Each measurement is a run of `sluicectl bench
// --json` in a child process with a daemon of its own, so that one measurement's queues, caches
// and WAL never carry into the next; C comes from the same session as the rates derived from it.
#include <algorithm>
#include <iomanip>
#include <map>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/bench.h"
#include "cli/bench_child.h"
#include "cli/common.h"
#include "service/daemon_metrics.h"

namespace sluice::cli {

namespace {

namespace po = boost::program_options;

struct TableOptions {
    double durationS = 10;
    double warmupS = 3;
    int rounds = 1;
    std::vector<int> delaysMs{1, 5, 20, 200};
    std::string sluiced;
    bool json = false;
    uint32_t eventsPerMessage = 100;  // in the open-loop cells; C is measured with 100
    bool closeWhenIdle = false;       // batch.close_when_idle in the open-loop cells
};

const Command kLatencyTable = {
    "bench --latency-table",
    "[options]",
    "Measures the capacity C (closed loop, the built-in configuration), then the acknowledgement\n"
    "latency open loop at C/4 and C/2 for each batch.max_delay, each measurement a `sluicectl bench\n"
    "--json` child with a daemon of its own. Prints p50, p99 and the mean batch per cell. The capacity\n"
    "run sends 100 events per message; --events-per-message sets the cells' (1: each event a\n"
    "request of its own, as an independent client sending events one by one).",
    R"(Exit codes: 0 done, 64 bad options, 70 a measurement failed (its message is above).

Example:
  sluicectl bench --latency-table --rounds 3 --duration 10 --warmup 5
  sluicectl bench --latency-table --rounds 3 --duration 10 --warmup 5 --events-per-message 1 --delays 5,200
)",
};

struct LatencyCell {
    int delayMs = 0;
    double fraction = 0;  // of C
    double rate = 0;
    std::vector<double> p50, p99, batch;
    // Per step of service::kBatchLatencySteps, the child's p99 (histogram bucket bound): which
    // step owns the tail.
    std::map<std::string, std::vector<double>> stepP99;
};

nlohmann::json stepMedians(const LatencyCell& cell)
{
    nlohmann::json out = nlohmann::json::object();
    for (std::string_view step : service::kBatchLatencySteps)
        if (auto it = cell.stepP99.find(std::string(step)); it != cell.stepP99.end() && !it->second.empty())
            out[std::string(step)] = median(it->second);
    return out;
}

}  // namespace

int runBenchLatencyTable(const std::vector<std::string>& args, Io& io)
{
    TableOptions o;
    std::string delays;
    po::options_description options = optionGroup();
    options.add_options()
        ("latency-table", "this table (required)")
        ("duration", po::value(&o.durationS)->value_name("SECONDS"), "measured seconds per cell (default 10)")
        ("warmup", po::value(&o.warmupS)->value_name("SECONDS"), "seconds before measuring, per cell (default 3)")
        ("rounds", po::value(&o.rounds)->value_name("N"), "rounds over the whole table; each cell is the median (default 1)")
        ("delays", po::value(&delays)->value_name("MS,..."), "max_delay values in ms (default 1,5,20,200)")
        ("sluiced", po::value(&o.sluiced)->value_name("PATH"), "sluiced binary to start (default: next to sluicectl)")
        ("events-per-message", po::value(&o.eventsPerMessage)->value_name("N"),
         "events per message in the open-loop cells (default 100)")
        ("close-when-idle", po::bool_switch(&o.closeWhenIdle), "batch.close_when_idle = yes in the open-loop cells")
        ("json", po::bool_switch(&o.json), "print the table as JSON");
    po::variables_map vm;
    if (!parseCommandLine(kLatencyTable, args, options, vm, io))
        return kExitOk;
    if (!delays.empty()) {
        o.delaysMs.clear();
        size_t at = 0;
        while (at <= delays.size()) {
            const size_t comma = std::min(delays.find(',', at), delays.size());
            try {
                o.delaysMs.push_back(std::stoi(delays.substr(at, comma - at)));
            } catch (const std::exception&) {
                throw Failure(kExitUsage, "--delays takes milliseconds separated by commas");
            }
            at = comma + 1;
        }
    }
    if (o.rounds < 1 || o.durationS <= 0 || o.warmupS < 0 || o.eventsPerMessage < 1)
        throw Failure(kExitUsage, "--rounds, --duration, --warmup and --events-per-message must be positive");

    std::vector<std::string> common{"--json", "--duration", std::to_string(o.durationS), "--warmup",
                                    std::to_string(o.warmupS)};
    if (!o.sluiced.empty()) {
        common.push_back("--sluiced");
        common.push_back(o.sluiced);
    }

    std::vector<double> capacities;
    std::vector<LatencyCell> cells;
    for (int delay : o.delaysMs)
        for (double fraction : {0.25, 0.5})
            cells.push_back(LatencyCell{delay, fraction, 0, {}, {}, {}, {}});
    for (int round = 0; round < o.rounds; ++round) {
        io.err << "bench: round " << round + 1 << "/" << o.rounds << ": capacity (closed loop)...\n";
        const nlohmann::json c = benchChild(common);
        if (!c.is_object() || !c.contains("acknowledged_per_s"))
            throw Failure(kExitSoftware, "the capacity run failed (its own message is above)");
        const double capacity = c["acknowledged_per_s"].get<double>();
        capacities.push_back(capacity);
        for (LatencyCell& cell : cells) {
            cell.rate = capacity * cell.fraction;
            std::vector<std::string> a = common;
            a.insert(a.end(), {"--rate", std::to_string(static_cast<long>(cell.rate)), "--events-per-message",
                               std::to_string(o.eventsPerMessage), "--config-line", "[batch]", "--config-line",
                               "max_delay = " + std::to_string(cell.delayMs) + "ms"});
            if (o.closeWhenIdle)
                a.insert(a.end(), {"--config-line", "close_when_idle = yes"});
            io.err << "bench: max_delay " << cell.delayMs << " ms at " << static_cast<long>(cell.rate)
                      << " events/s...\n";
            const nlohmann::json r = benchChild(a);
            if (!r.is_object() || !r.contains("ack_p99_ms"))
                throw Failure(kExitSoftware, "the run at max_delay " + std::to_string(cell.delayMs) +
                                                 " ms failed (its own message is above)");
            cell.p50.push_back(r["ack_p50_ms"].get<double>());
            cell.p99.push_back(r["ack_p99_ms"].get<double>());
            cell.batch.push_back(r["mean_batch"].get<double>());
            if (r.contains("latency_steps_p99_ms"))
                for (const auto& [step, ms] : r["latency_steps_p99_ms"].items())
                    cell.stepP99[step].push_back(ms.get<double>());
        }
    }

    const double capacity = median(capacities);
    if (o.json) {
        nlohmann::json out;
        out["capacity_per_s"] = capacity;
        out["rounds"] = o.rounds;
        out["events_per_message"] = o.eventsPerMessage;
        out["close_when_idle"] = o.closeWhenIdle;
        for (const LatencyCell& cell : cells)
            out["cells"].push_back({{"max_delay_ms", cell.delayMs},
                                    {"fraction_of_capacity", cell.fraction},
                                    {"p50_ms", median(cell.p50)},
                                    {"p99_ms", median(cell.p99)},
                                    {"mean_batch", median(cell.batch)},
                                    {"step_p99_ms", stepMedians(cell)}});
        io.out << out.dump() << "\n";
        return kExitOk;
    }
    io.out << "sluice bench: acknowledgement latency against max_delay (reference workload, 4 producers, "
           << o.eventsPerMessage << " events per message" << (o.closeWhenIdle ? ", close_when_idle" : "") << ")\n"
           << "  capacity C      " << std::fixed << std::setprecision(0) << capacity
           << " events/s (closed loop, median of " << o.rounds << ")\n"
           << "  max_delay   rate       p50 ms   p99 ms   mean batch   p99 of a batch's steps, ms at most\n";
    for (const LatencyCell& cell : cells) {
        io.out << "  " << std::setw(6) << cell.delayMs << " ms   C/" << std::left << std::setw(7)
               << (cell.fraction == 0.25 ? 4 : 2) << std::right << std::setprecision(1) << std::setw(8)
               << median(cell.p50) << " " << std::setw(8) << median(cell.p99) << std::setprecision(0) << "   "
               << std::setw(8) << median(cell.batch) << "  ";
        const nlohmann::json steps = stepMedians(cell);
        for (std::string_view step : service::kBatchLatencySteps)
            if (steps.contains(std::string(step)))
                io.out << " " << step << " " << std::setprecision(1) << steps[std::string(step)].get<double>();
        io.out << "\n";
    }
    return kExitOk;
}

}  // namespace sluice::cli
