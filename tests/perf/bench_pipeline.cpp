// In-process benchmark of the pipeline without ZeroMQ: batches of the reference workload go
// through the Transformer (parse, transform, aggregate on a WorkerPool of N lanes) and the
// BatchWriter (SQLite, synchronous=FULL), on threads of their own when pipelined, as in the daemon. Prints events/s for the transform
// alone, the writer alone, and both pipelined, after a first pass that creates the keys.
//
//   bench_pipeline [events=200000] [workers=2] [sessions=100000] [pad-bytes=0] [batch-events=10000]
// SLUICE_BENCH_CONFIG=sluiced.conf takes the contracts and pipelines from that configuration.
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "config/config.h"
#include "core/clock.h"
#include "core/queue.h"
#include "privacy/key_wrap.h"
#include "privacy/random.h"
#include "transform/pipeline_runtime.h"
#include "transform/transformer.h"
#include "transform/worker_pool.h"
#include "store/batch_writer.h"
#include "workload/generator.h"

using namespace sluice;
namespace fs = std::filesystem;

namespace {

double threadCpuSeconds()
{
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double processCpuSeconds()
{
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Bytes this process passed to write(2) and friends so far (/proc/self/io "wchar").
double writtenBytes()
{
    std::ifstream io("/proc/self/io");
    std::string key;
    double value = 0;
    while (io >> key >> value)
        if (key == "wchar:")
            return value;
    return 0;
}

double secondsSince(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

uint64_t gSessions = 100'000;
size_t gPadBytes = 0;
uint64_t gBatchEvents = 10'000;

std::vector<Batch> makeBatches(uint64_t events, uint64_t seed, uint64_t firstId)
{
    workload::Options wo;
    wo.seed = seed;
    wo.sessions = gSessions;
    wo.padBytes = gPadBytes;
    workload::Generator gen(wo);
    std::vector<Batch> batches;
    const int64_t now = SystemClock::instance().wallMs();
    uint64_t made = 0;
    while (made < events) {
        Batch b;
        b.id = firstId + batches.size();
        for (uint64_t r = 0; r < gBatchEvents / 100 && made < events; ++r) {
            std::string body;
            for (int i = 0; i < 100; ++i, ++made) {
                gen.next(body);
                body += '\n';
            }
            Request req;
            req.payload = Payload(body);
            req.events = 100;
            req.receivedAtMs = now;
            req.mode = RequestMode::kAcknowledged;
            req.producer = "bench";
            req.seq = b.id * 100'000 + r;
            b.bytes += body.size();
            b.events += 100;
            b.requests.push_back(std::move(req));
        }
        b.openedAtMs = b.closedAtMs = now;
        batches.push_back(std::move(b));
    }
    return batches;
}

}  // namespace

int main(int argc, char** argv)
{
    const uint64_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200'000;
    const int workers = argc > 2 ? std::atoi(argv[2]) : 2;
    if (argc > 3)
        gSessions = std::strtoull(argv[3], nullptr, 10);
    if (argc > 4)
        gPadBytes = std::strtoull(argv[4], nullptr, 10);
    if (argc > 5)
        gBatchEvents = std::max<uint64_t>(100, std::strtoull(argv[5], nullptr, 10));
    const fs::path dir = fs::temp_directory_path() / ("sluice-bench-pipeline-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string database = (dir / "sluice.db").string();

    // SLUICE_BENCH_CONFIG: a sluiced.conf whose contracts and pipelines to use (default: built-in).
    const char* configFile = std::getenv("SLUICE_BENCH_CONFIG");
    auto cfg = config::loadForTools(configFile ? configFile : "", dir.string());
    if (!cfg) {
        std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
        return 1;
    }
    auto master = privacy::randomBytes(32);
    auto wrapper = privacy::KeyWrapper::create(std::move(*master));
    auto runtime = transform::PipelineRuntime::build(cfg->pipelineSpec, *wrapper);
    store::BatchWriter::Options wo;
    wo.path = database;
    wo.sketches = transform::sketchFunctions();
    wo.backgroundCheckpoints = std::getenv("SLUICE_BENCH_INLINE_CHECKPOINTS") == nullptr;
    auto writer = store::BatchWriter::open(wo);
    if (!runtime || !writer) {
        std::fprintf(stderr, "setup failed\n");
        return 1;
    }
    if (Status s = (*writer)->applySchema(*cfg->pipelineSpec, (*runtime)->schema->tables, 0); !s) {
        std::fprintf(stderr, "%s\n", s.message().c_str());
        return 1;
    }

    transform::WorkerPool pool(workers);
    transform::RollingKeys keyPolicy(86'400'000);
    transform::Transformer::Parts parts{pool, *wrapper, keyPolicy, transform::databaseKeySources(database),
                                        SystemClock::instance()};
    auto created = transform::Transformer::create({}, std::move(parts), *runtime, {});
    if (!created) {
        std::fprintf(stderr, "%s\n", created.status().message().c_str());
        return 1;
    }
    transform::Transformer& transformer = **created;
    // The processor thread of the daemon, minus its queue handling.
    BoundedQueue<Batch> in(1000);
    BoundedQueue<WriteBatch> out(1000);
    BoundedQueue<std::pair<std::vector<KeyRecord>, std::vector<std::string>>> notices(1000);
    std::thread processor([&] {
        pthread_setname_np(pthread_self(), "bench-transform");
        while (auto batch = in.pop()) {
            while (auto n = notices.tryPop()) {
                transformer.keysStored(n->first);
                transformer.keysShredded(n->second);
            }
            auto wb = transformer.transform(std::move(*batch));
            if (!wb) {
                std::fprintf(stderr, "%s\n", wb.status().message().c_str());
                std::exit(1);
            }
            out.push(std::move(*wb));
        }
        out.close();
    });
    auto committed = [&](const WriteBatch& wb, const std::vector<std::string>& shredded) {
        notices.push({wb.keys, shredded});
    };

    uint64_t nextId = 1;
    auto pass = [&](const char* name, bool write, bool pipelined) {
        std::vector<Batch> batches = makeBatches(events, nextId, nextId);
        nextId += batches.size();
        const size_t n = batches.size();
        std::vector<WriteBatch> produced;
        auto start = std::chrono::steady_clock::now();
        const double cpu0 = processCpuSeconds();
        double transformSeconds = 0, writeSeconds = 0, transformCpu = 0, writeCpu = 0, writeBytes = 0;
        if (pipelined) {
            std::thread feeder([&] {
                for (auto& b : batches)
                    in.push(std::move(b));
            });
            for (size_t i = 0; i < n; ++i) {
                auto wb = out.pop();
                std::vector<std::string> shredded;
                store::CommitTiming timing;
                if (Status s = (*writer)->commit(*wb, shredded, timing); !s)
                    std::fprintf(stderr, "%s\n", s.message().c_str());
                committed(*wb, shredded);
            }
            feeder.join();
        } else {
            for (auto& b : batches)
                in.push(std::move(b));
            for (size_t i = 0; i < n; ++i)
                produced.push_back(std::move(*out.pop()));
            transformSeconds = secondsSince(start);
            transformCpu = processCpuSeconds() - cpu0;
            if (write) {
                // On a thread of its own, so that profilers can tell the writer apart.
                std::thread writerThread([&] {
                    pthread_setname_np(pthread_self(), "bench-writer");
                    auto ws = std::chrono::steady_clock::now();
                    const double wc = threadCpuSeconds();
                    const double wb0 = writtenBytes();
                    for (auto& wb : produced) {
                        std::vector<std::string> shredded;
                        store::CommitTiming timing;
                        if (Status s = (*writer)->commit(wb, shredded, timing); !s)
                            std::fprintf(stderr, "%s\n", s.message().c_str());
                        committed(wb, shredded);
                    }
                    writeSeconds = secondsSince(ws);
                    writeCpu = threadCpuSeconds() - wc;
                    writeBytes = writtenBytes() - wb0;
                });
                writerThread.join();
            }
        }
        const double total = secondsSince(start);
        if (pipelined)
            std::printf("%-22s %9.0f events/s (transform and write overlapped), %.2f CPU s per million events\n", name,
                        events / total, (processCpuSeconds() - cpu0) / events * 1e6);
        else
            std::printf("%-22s transform %8.0f events/s (%.2f CPU us/event)   write %8.0f events/s (%.2f CPU us/event, "
                        "%.0f bytes written/event)\n",
                        name, events / transformSeconds, transformCpu / events * 1e6, write ? events / writeSeconds : 0.0,
                        writeCpu / events * 1e6, writeBytes / events);
    };

    std::printf("bench_pipeline: %llu events per pass, %d worker(s), batches of %llu, %llu sessions, %zu pad bytes\n",
                static_cast<unsigned long long>(events), workers, static_cast<unsigned long long>(gBatchEvents),
                static_cast<unsigned long long>(gSessions), gPadBytes);
    pass("first pass (new keys)", true, false);
    pass("steady state", true, false);
    pass("pipelined", true, true);
    in.close();
    processor.join();
    writer->reset();
    if (std::getenv("SLUICE_BENCH_KEEP"))
        std::printf("kept %s\n", dir.c_str());
    else
        fs::remove_all(dir);
    return 0;
}
