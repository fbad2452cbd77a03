// sluicectl bench --compare-pipeline: the daemon's throughput as a ratio to an in-process,
// single-thread pipeline of the same work, both measured in one invocation.
//
// The baseline is the daemon's own code on one thread: the Transformer on an inline executor
// (parse, validate, keys, AES-SIV, derived output, masking, aggregation) and the BatchWriter
// (one transaction per 10,000-event batch, synchronous=FULL, SQLite's own checkpoints), one
// batch after the other, no ZeroMQ and no acknowledgements. Its rate is taken in the steady
// state (a first pass creates the 100,000 session keys, as the daemon's warm-up does) and counts
// only the time spent in transform and write (the workload's JSON is generated outside it).
// The daemon's rate is a `sluicectl bench --json` child (closed loop, acknowledged, its own
// daemon). Rounds alternate which one runs first; medians are printed.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/bench.h"
#include "cli/bench_child.h"
#include "cli/common.h"
#include "config/config.h"
#include "core/clock.h"
#include "privacy/key_wrap.h"
#include "privacy/random.h"
#include "store/batch_writer.h"
#include "transform/db_key_source.h"
#include "transform/executor.h"
#include "transform/key_policy.h"
#include "transform/pipeline_runtime.h"
#include "transform/transformer.h"
#include "workload/generator.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;

const Command kComparePipeline = {
    "bench --compare-pipeline",
    "[options]",
    "Measures the daemon (closed loop, acknowledged, its own sluiced) and an in-process single-thread\n"
    "pipeline of the same work (the Transformer on one inline lane and the BatchWriter, one batch\n"
    "after the other, no ZeroMQ), alternating, and prints both rates and their ratio (medians).",
    R"(Exit codes: 0 done, 64 bad options, 70 a measurement failed (its message is above).

Example:
  sluicectl bench --compare-pipeline --rounds 3 --duration 10 --warmup 5
)",
};

constexpr uint64_t kBatchEvents = 10'000;
constexpr uint32_t kEventsPerRequest = 100;

double threadCpuSeconds() { return static_cast<double>(threadCpuNs()) / 1e9; }

Batch makeBatch(workload::Generator& gen, uint64_t id, int64_t nowMs)
{
    Batch b;
    b.id = id;
    for (uint64_t r = 0; r < kBatchEvents / kEventsPerRequest; ++r) {
        std::string body;
        for (uint32_t i = 0; i < kEventsPerRequest; ++i) {
            gen.next(body);
            body += '\n';
        }
        Request req;
        req.payload = Payload(body);
        req.events = kEventsPerRequest;
        req.receivedAtMs = nowMs;
        req.mode = RequestMode::kAcknowledged;
        req.producer = "baseline";
        req.seq = id * 1'000 + r;
        b.bytes += body.size();
        b.events += kEventsPerRequest;
        b.requests.push_back(std::move(req));
    }
    b.openedAtMs = b.closedAtMs = nowMs;
    return b;
}

struct BaselineRun {
    double eventsPerS = 0;
    double cpuUsPerEvent = 0;
};

// One thread: transform a batch, commit it, tell the Transformer which keys were stored; a
// first pass of `events` makes the keys, the second is measured.
BaselineRun singleThreadPipeline(uint64_t events)
{
    const fs::path dir = fs::temp_directory_path() / ("sluice-bench-baseline-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    struct Cleanup {
        fs::path dir;
        ~Cleanup()
        {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } cleanup{dir};
    const std::string database = (dir / "sluice.db").string();
    auto cfg = config::loadForTools("", dir.string());
    if (!cfg)
        throw Failure(kExitSoftware, "baseline: " + cfg.status().message());
    auto master = privacy::randomBytes(32);
    if (!master)
        throw Failure(kExitSoftware, "baseline: " + master.status().message());
    auto wrapper = privacy::KeyWrapper::create(std::move(*master));
    if (!wrapper)
        throw Failure(kExitSoftware, "baseline: " + wrapper.status().message());
    auto runtime = transform::PipelineRuntime::build(cfg->pipelineSpec, *wrapper);
    if (!runtime)
        throw Failure(kExitSoftware, "baseline: " + runtime.status().message());
    store::BatchWriter::Options wo;
    wo.path = database;
    wo.sketches = transform::sketchFunctions();
    auto writer = store::BatchWriter::open(wo);
    if (!writer)
        throw Failure(kExitSoftware, "baseline: " + writer.status().message());
    if (Status s = (*writer)->applySchema(*cfg->pipelineSpec, (*runtime)->schema->tables, 0); !s)
        throw Failure(kExitSoftware, "baseline: " + s.message());
    transform::InlineExecutor executor;
    transform::RollingKeys keyPolicy(86'400'000);
    transform::Transformer::Parts parts{executor, *wrapper, keyPolicy, transform::databaseKeySources(database),
                                        SystemClock::instance()};
    auto transformer = transform::Transformer::create({}, std::move(parts), *runtime, {});
    if (!transformer)
        throw Failure(kExitSoftware, "baseline: " + transformer.status().message());

    workload::Options options;
    options.seed = 2000;
    workload::Generator gen(options);
    uint64_t nextId = 1;
    BaselineRun run;
    for (int pass = 0; pass < 2; ++pass) {
        double seconds = 0, cpu = 0;
        for (uint64_t done = 0; done < events; done += kBatchEvents) {
            Batch batch = makeBatch(gen, nextId++, SystemClock::instance().wallMs());
            const auto start = std::chrono::steady_clock::now();
            const double cpu0 = threadCpuSeconds();
            auto wb = (*transformer)->transform(std::move(batch));
            if (!wb)
                throw Failure(kExitSoftware, "baseline: " + wb.status().message());
            std::vector<std::string> shredded;
            store::CommitTiming timing;
            if (Status s = (*writer)->commit(*wb, shredded, timing); !s)
                throw Failure(kExitSoftware, "baseline: " + s.message());
            (*transformer)->keysStored(wb->keys);
            seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            cpu += threadCpuSeconds() - cpu0;
        }
        run.eventsPerS = static_cast<double>(events) / seconds;
        run.cpuUsPerEvent = cpu / static_cast<double>(events) * 1e6;
    }
    return run;
}

}  // namespace

int runBenchComparePipeline(const std::vector<std::string>& args, Io& io)
{
    double durationS = 10, warmupS = 5;
    int rounds = 3;
    uint64_t events = 300'000;
    std::string sluiced;
    bool json = false;
    po::options_description options = optionGroup();
    options.add_options()
        ("compare-pipeline", "this comparison (required)")
        ("duration", po::value(&durationS)->value_name("SECONDS"), "measured seconds of each daemon run (default 10)")
        ("warmup", po::value(&warmupS)->value_name("SECONDS"), "seconds before measuring the daemon (default 5)")
        ("events", po::value(&events)->value_name("N"), "events per baseline pass (default 300000)")
        ("rounds", po::value(&rounds)->value_name("N"), "rounds, alternating which runs first (default 3)")
        ("sluiced", po::value(&sluiced)->value_name("PATH"), "sluiced binary to start (default: next to sluicectl)")
        ("json", po::bool_switch(&json), "print the result as JSON");
    po::variables_map vm;
    if (!parseCommandLine(kComparePipeline, args, options, vm, io))
        return kExitOk;
    if (rounds < 1 || durationS <= 0 || warmupS < 0 || events < kBatchEvents)
        throw Failure(kExitUsage, "--rounds and --duration must be positive, --events at least 10000");

    std::vector<std::string> common{"--json", "--duration", std::to_string(durationS), "--warmup",
                                    std::to_string(warmupS)};
    if (!sluiced.empty()) {
        common.push_back("--sluiced");
        common.push_back(sluiced);
    }
    std::vector<double> daemonRates, baselineRates, baselineCpu, daemonCpu, ratios;
    for (int round = 0; round < rounds; ++round) {
        double daemon = 0;
        BaselineRun baseline;
        for (int step = 0; step < 2; ++step) {
            if ((step == 0) == (round % 2 == 0)) {
                io.err << "bench: round " << round + 1 << "/" << rounds << ": the daemon (closed loop)...\n";
                const nlohmann::json r = benchChild(common);
                if (!r.is_object() || !r.contains("acknowledged_per_s"))
                    throw Failure(kExitSoftware, "the daemon run failed (its own message is above)");
                daemon = r["acknowledged_per_s"].get<double>();
                daemonCpu.push_back(r["cpu_s_per_million"].get<double>());
            } else {
                io.err << "bench: round " << round + 1 << "/" << rounds << ": the single-thread pipeline...\n";
                baseline = singleThreadPipeline(events);
            }
        }
        daemonRates.push_back(daemon);
        baselineRates.push_back(baseline.eventsPerS);
        baselineCpu.push_back(baseline.cpuUsPerEvent);
        ratios.push_back(baseline.eventsPerS > 0 ? daemon / baseline.eventsPerS : 0);
    }
    if (json) {
        nlohmann::json out{{"rounds", rounds},
                           {"daemon_acknowledged_per_s", median(daemonRates)},
                           {"daemon_cpu_s_per_million", median(daemonCpu)},
                           {"single_thread_per_s", median(baselineRates)},
                           {"single_thread_cpu_us_per_event", median(baselineCpu)},
                           {"ratio", median(ratios)},
                           {"ratios", ratios}};
        io.out << out.dump() << "\n";
        return kExitOk;
    }
    io.out << "sluice bench: the daemon against a single-thread in-process pipeline of the same work\n"
           << std::fixed << std::setprecision(0)
           << "  daemon (ZeroMQ, acknowledged, closed loop)   " << std::setw(9) << median(daemonRates)
           << " events/s   " << std::setprecision(2) << median(daemonCpu) << " CPU s per million events\n"
           << std::setprecision(0) << "  single-thread pipeline (in process)          " << std::setw(9)
           << median(baselineRates) << " events/s   " << std::setprecision(2) << median(baselineCpu)
           << " CPU s per million events\n"
           << "  ratio                                        " << std::setw(9) << median(ratios)
           << "   (median of " << rounds << " rounds; per round:";
    for (double r : ratios)
        io.out << " " << r;
    io.out << ")\n";
    return kExitOk;
}

}  // namespace sluice::cli
