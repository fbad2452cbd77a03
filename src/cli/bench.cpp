// sluicectl bench: drives a sluiced with the reference workload of spec section 11 and reports
// what a user of an edge host cares about: sustained events/s (committed and acknowledged),
// acknowledgement latency, daemon CPU per million events, peak memory, batch sizes, and where
// the time goes per stage (from the daemon's metrics).
//
// By default it starts its own sluiced (built-in contract and pipeline, a temp directory, tcp
// loopback endpoints); --endpoint targets one that is already running. --exporters turns on
// exporters in the daemon it starts (files, a ZeroMQ XPUB socket, Kafka: librdkafka's mock cluster
// in this process) and reports their lag; --compare runs the same measurement without and with
// them, alternating, so that the ratio comes from one session of a shared machine.
#include "cli/bench.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/bench_child.h"
#include "cli/common.h"
#include "cli/metrics_client.h"
#include "config/builtin.h"
#include "core/time_format.h"
#ifdef SLUICE_HAVE_KAFKA
#include "export/kafka_mock_cluster.h"
#endif
#include "ingest/producer.h"
#include "service/daemon_metrics.h"
#include "workload/generator.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;
using SteadyClock = std::chrono::steady_clock;

struct BenchOptions {
    std::string endpoint;        // "" : start our own daemon
    std::string metrics;         // host:port of the daemon's metrics endpoint
    int pid = 0;                 // of a daemon we did not start (for CPU and memory)
    std::string sluiced;
    std::string mode = "ack";
    int producers = 4;
    uint32_t eventsPerMessage = 100;
    double rate = 0;             // events/s offered in total; 0 = as fast as acknowledged
    double durationS = 10;
    uint64_t events = 0;         // stop after this many (0: by duration)
    double warmupS = 3;
    bool warmupPass = false;     // also warm up until every message was acknowledged once
    size_t window = 256;
    int workers = 0;             // daemon workers (0: its default)
    std::string extraConfig;     // INI lines for our own daemon
    std::vector<std::string> exporters;  // file, stream, kafka: in our own daemon
    int compare = 0;             // > 0: this many runs without and with the exporters, alternating
    double steady = 0.25;        // with --compare: then runs with exporters at this share of the rate without
    std::string aggregation = "tumbling";  // window shape of the daemon we start
    uint64_t sessions = 100'000;  // distinct session_id values (key-field values) in the events
    int compareWindows = 0;      // > 0: this many rounds of tumbling, sliding and session runs
    bool keep = false;
    bool json = false;
    Io* io = nullptr;            // the command's streams: results to out, progress to err
};

using Json = nlohmann::ordered_json;

// A figure as the text output shows it: `digits` decimals (0: an integer in the JSON).
Json rounded(double value, int digits)
{
    if (digits == 0)
        return static_cast<int64_t>(std::llround(value));
    const double scale = std::pow(10.0, digits);
    return std::round(value * scale) / scale;
}


int64_t nowNs()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch()).count();
}

uint16_t freePort()
{
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

// The daemon's metrics, as `series name{labels}` -> value (empty when unreachable).
std::map<std::string, double> scrape(const std::string& hostPort)
{
    std::map<std::string, double> out;
    auto response = httpGet("http://" + hostPort + "/metrics", 5000);
    if (!response || response->status != 200)
        return out;
    auto parsed = Scrape::parse(response->body);
    if (!parsed)
        return out;
    for (const Sample& sample : parsed->samples()) {
        std::string key = sample.name;
        if (!sample.labels.empty()) {
            key += '{';
            for (size_t i = 0; i < sample.labels.size(); ++i) {
                if (i)
                    key += ',';
                key += sample.labels[i].first + "=\"" + sample.labels[i].second + "\"";
            }
            key += '}';
        }
        out[key] = sample.value;
    }
    return out;
}

struct ProcessUsage {
    double cpuSeconds = 0;
    double peakRssMiB = 0;
    double rssMiB = 0;
    std::map<std::string, double> threadCpuSeconds;  // by thread name (sluice-writer, ZMQbg/IO/0, ...)
};

// utime + stime of a /proc/.../stat file, in seconds.
double cpuSecondsOf(const std::string& statPath)
{
    std::ifstream stat(statPath);
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close == std::string::npos)
        return 0;
    std::istringstream fields(text.substr(close + 2));
    std::string f;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14)
            utime = std::stoull(f);
        if (i == 15)
            stime = std::stoull(f);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

ProcessUsage usageOf(int pid)
{
    ProcessUsage u;
    if (pid <= 0)
        return u;
    const std::string proc = "/proc/" + std::to_string(pid);
    u.cpuSeconds = cpuSecondsOf(proc + "/stat");
    std::error_code ec;
    for (const auto& task : fs::directory_iterator(proc + "/task", ec)) {
        std::ifstream comm(task.path() / "comm");
        std::string name;
        if (std::getline(comm, name))
            u.threadCpuSeconds[name] += cpuSecondsOf((task.path() / "stat").string());
    }
    std::ifstream status(proc + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0)
            u.peakRssMiB = std::atof(line.c_str() + 6) / 1024.0;
        if (line.rfind("VmRSS:", 0) == 0)
            u.rssMiB = std::atof(line.c_str() + 6) / 1024.0;
    }
    return u;
}

class OwnDaemon {
public:
    ~OwnDaemon() { stop(); }

    // `exporters`: file, stream, kafka (the Kafka one needs `kafkaBootstrap`).
    bool start(const BenchOptions& o, const std::vector<std::string>& exporters = {})
    {
        dir_ = fs::temp_directory_path() / ("sluice-bench-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "state");
        {
            std::ofstream key(dir_ / "state" / "master.key");
            std::random_device rd;
            const char* digits = "0123456789abcdef";
            for (int i = 0; i < 64; ++i)
                key << digits[rd() % 16];
            key << "\n";
        }
        ::chmod((dir_ / "state" / "master.key").c_str(), 0600);
        const uint16_t pull = freePort(), router = freePort(), metrics = freePort();
        pullEndpoint = "tcp://127.0.0.1:" + std::to_string(pull);
        routerEndpoint = "tcp://127.0.0.1:" + std::to_string(router);
        metricsAddress = "127.0.0.1:" + std::to_string(metrics);
        const fs::path config = dir_ / "sluiced.conf";
        {
            std::ofstream c(config);
            c << "[service]\nstate_dir = " << (dir_ / "state").string() << "\n";
            if (o.workers > 0)
                c << "workers = " << o.workers << "\n";
            c << "[ingest]\npull = " << pullEndpoint << "\nrouter = " << routerEndpoint << "\n"
              << "[privacy]\nmaster_key_file = master.key\n"
              << "[pipeline]\n" << pipelineConfig(o)
              << (exporters.empty() ? "" : "exporters = " + writeExporters(exporters) + "\n")
              << "[metrics]\nlisten = " << metricsAddress << "\n"
              << o.extraConfig << "\n";
        }
        logPath_ = (dir_ / "sluiced.log").string();
        pid = ::fork();
        if (pid == 0) {
            int fd = ::open(logPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(fd, 2);
            ::dup2(fd, 1);
            ::execl(o.sluiced.c_str(), o.sluiced.c_str(), "--config", config.c_str(), nullptr);
            ::_exit(127);
        }
        const auto deadline = SteadyClock::now() + std::chrono::seconds(30);
        while (SteadyClock::now() < deadline) {
            std::ifstream log(logPath_);
            std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
            if (text.find(" ready: ") != std::string::npos)
                return true;
            int status;
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                o.io->err << "sluicectl bench: sluiced exited:\n" << text;
                pid = -1;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

    void stop()
    {
        if (pid > 0) {
            ::kill(pid, SIGTERM);
            int status;
            ::waitpid(pid, &status, 0);
            pid = -1;
        }
        if (!dir_.empty() && !keep) {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }

    std::string database() const { return (dir_ / "state" / "sluice.db").string(); }

    int pid = -1;
    bool keep = false;
    std::string pullEndpoint, routerEndpoint, metricsAddress;
    std::string streamEndpoint;  // the stream exporter's, when there is one
    std::string kafkaBootstrap;

private:
    // One JSON file per exporter, each exporting everything the built-in pipeline makes: the
    // contract's events, the derived output's rows, the aggregation's final windows. Returns the
    // directory.
    // The reference workload's pipeline with the window shape asked for. tumbling: the built-in
    // pipeline (1m windows by country); sliding: 5m windows every 1m by country (5 windows per
    // event); session: a 30m gap by session_id (the workload's 100,000 sessions, all of them open
    // during a run). The same metrics, lateness and k; the aggregation keeps its name.
    std::string pipelineConfig(const BenchOptions& o) { return benchPipelineConfig(o.aggregation, dir_); }

    std::string writeExporters(const std::vector<std::string>& exporters)
    {
        const fs::path dir = dir_ / "exporters";
        fs::create_directories(dir);
        const std::string sources = R"("contracts": ["acme/checkout/1.0.0"], "outputs": ["analytics"], )"
                                    R"("aggregations": ["revenue_by_country"])";
        for (const std::string& type : exporters) {
            std::ofstream f(dir / (type + ".json"));
            if (type == "file") {
                // zstd: what one ships to a data lake; a file every 500 ms keeps the lag it adds small.
                f << R"({"name": "files", "type": "file", )" << sources
                  << R"(, "directory": "export", "compression": "zstd", "interval": "500ms"})";
            } else if (type == "stream") {
                streamEndpoint = "tcp://127.0.0.1:" + std::to_string(freePort());
                f << R"({"name": "stream", "type": "stream", )" << sources << R"(, "endpoint": ")" << streamEndpoint
                  << R"("})";
            } else if (type == "kafka") {
                f << R"({"name": "kafka", "type": "kafka", )" << sources
                  << R"(, "properties": {"bootstrap.servers": ")" << kafkaBootstrap << R"("}})";
            }
        }
        return dir.string();
    }

    fs::path dir_;
    std::string logPath_;
};

struct Shared {
    std::atomic<bool> stop{false};
    std::atomic<bool> measuring{false};
    std::atomic<uint64_t> sentEvents{0};
    std::atomic<uint64_t> ackedEvents{0};
    std::atomic<uint64_t> ackedInWindow{0};
    std::mutex latencyMutex;
    std::vector<int64_t> latenciesNs;
    std::atomic<uint64_t> errors{0};
};

// Messages are generated before the clock starts, so the producer threads cost the machine
// (which the daemon shares) as little as possible while measuring.
std::vector<std::string> makeMessages(int producer, size_t count, uint32_t perMessage, uint64_t sessions)
{
    workload::Options wo;
    wo.seed = 1000 + static_cast<uint64_t>(producer);
    wo.sessions = sessions;
    workload::Generator gen(wo);
    std::vector<std::string> messages(count);
    for (auto& m : messages) {
        m.reserve(perMessage * 310);
        for (uint32_t i = 0; i < perMessage; ++i) {
            gen.next(m);
            m += '\n';
        }
    }
    return messages;
}

void produce(int index, const BenchOptions& o, const std::string& endpoint, const std::vector<std::string>& messages,
             Shared& shared)
{
    const double perProducerRate = o.rate > 0 ? o.rate / o.producers / o.eventsPerMessage : 0;  // messages/s
    const int64_t intervalNs = perProducerRate > 0 ? static_cast<int64_t>(1e9 / perProducerRate) : 0;
    // Open loop: the producers take turns, evenly spaced (producer i sends i/N of an interval
    // after producer 0), so messages arrive one by one as from independent clients, not in
    // bursts of one message per producer at the same instant.
    int64_t next = nowNs() + intervalNs * index / std::max(1, o.producers);
    size_t m = 0;
    if (o.mode == "ff") {
        auto push = ingest::PushProducer::connect(endpoint, 100);
        if (!push) {
            ++shared.errors;
            return;
        }
        while (!shared.stop) {
            if (intervalNs) {
                while (nowNs() < next)
                    std::this_thread::sleep_for(std::chrono::microseconds(200));
                next += intervalNs;
            }
            if (!(*push)->send(messages[m++ % messages.size()]))
                ++shared.errors;
            shared.sentEvents += o.eventsPerMessage;
        }
        (*push)->close(5000);
        return;
    }
    ingest::AckProducer::Options ao;
    ao.endpoint = endpoint;
    ao.producerId = "bench-" + std::to_string(::getpid()) + "-" + std::to_string(index);
    ao.window = intervalNs ? std::max<size_t>(o.window, 256) : o.window;
    ao.timeoutMs = 10'000;
    ao.onReply = [&shared](const ingest::Reply& r) {
        shared.ackedEvents += r.accepted;
        if (shared.measuring) {
            shared.ackedInWindow += r.accepted;
            std::lock_guard lock(shared.latencyMutex);
            shared.latenciesNs.push_back(r.latencyNs);
        }
    };
    auto producer = ingest::AckProducer::connect(ao);
    if (!producer) {
        ++shared.errors;
        return;
    }
    while (!shared.stop) {
        if (intervalNs) {
            if (nowNs() < next) {
                // Take replies as they come while waiting, so latencies are measured when they arrive.
                if (!(*producer)->serveUntil(next))
                    ++shared.errors;
                continue;
            }
            next += intervalNs;
        }
        if (!(*producer)->send(messages[m++ % messages.size()], o.eventsPerMessage))
            ++shared.errors;
        shared.sentEvents += o.eventsPerMessage;
    }
    if (!(*producer)->flush())
        ++shared.errors;
}

double percentile(std::vector<int64_t>& v, double p)
{
    if (v.empty())
        return 0;
    size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return static_cast<double>(v[k]) / 1e6;
}


// One measured run.
struct Measurement {
    double seconds = 0;
    double committedPerS = 0;
    double ackedPerS = 0;
    double p50Ms = 0, p99Ms = 0, maxMs = 0;
    size_t requests = 0;
    double cpuSeconds = 0;
    double peakRssMiB = 0, rssMiB = 0;
    double batches = 0;
    double keysCreatedPerEvent = 0, keysLoadedPerEvent = 0;  // made new; read back from the database
    std::map<std::string, double> stageUsPerEvent;
    // The daemon's account of a request's latency (service::kLatencySteps): mean ms per sample.
    std::vector<std::pair<std::string, double>> latencyStepsMs;
    // The p99 of each per-batch step (service::kBatchLatencySteps), as the upper bound of its
    // histogram bucket: "at most this many ms".
    std::vector<std::pair<std::string, double>> latencyStepsP99Ms;
    std::map<std::string, double> threadCpuUsPerEvent;
    // Exporters (when the daemon has any): the largest lag of any exporter, sampled every 500 ms
    // while measuring (median and maximum of the samples), and records handed to the sinks.
    std::vector<double> lagSamples;
    double exportedPerS = 0;
    uint64_t errors = 0;

    double committed() const { return committedPerS * seconds; }
    double lagMedian() const
    {
        std::vector<double> v = lagSamples;
        if (v.empty())
            return 0;
        std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
        return v[v.size() / 2];
    }
    double lagMax() const { return lagSamples.empty() ? 0 : *std::max_element(lagSamples.begin(), lagSamples.end()); }
};

double largestExportLag(const std::map<std::string, double>& metrics, bool& any)
{
    double lag = 0;
    for (auto it = metrics.lower_bound("sluice_export_lag_seconds{");
         it != metrics.end() && it->first.rfind("sluice_export_lag_seconds{", 0) == 0; ++it) {
        any = true;
        lag = std::max(lag, it->second);
    }
    return lag;
}

double sumOf(const std::map<std::string, double>& metrics, const std::string& name)
{
    double sum = 0;
    for (auto it = metrics.lower_bound(name + "{"); it != metrics.end() && it->first.rfind(name + "{", 0) == 0; ++it)
        sum += it->second;
    return sum;
}

Measurement measure(const BenchOptions& o, const std::string& endpoint, const std::string& metrics, int pid,
                    const std::vector<std::vector<std::string>>& messages)
{
    Shared shared;
    std::vector<std::thread> producers;
    for (int p = 0; p < o.producers; ++p)
        producers.emplace_back([&, p] { produce(p, o, endpoint, messages[static_cast<size_t>(p)], shared); });

    o.io->err << "bench: warming up for " << o.warmupS << " s against " << endpoint << "\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(o.warmupS * 1000)));
    if (o.warmupPass) {
        // Every producer has sent each of its messages once: every key-field value has its key.
        uint64_t pass = 0;
        for (const auto& own : messages)
            pass += own.size() * o.eventsPerMessage;
        o.io->err << "bench: warming up until " << pass << " events are acknowledged\n";
        while (shared.ackedEvents < pass && shared.errors == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Measurement m;
    auto m0 = scrape(metrics);
    ProcessUsage u0 = usageOf(pid);
    const int64_t t0 = nowNs();
    const uint64_t sent0 = shared.sentEvents;
    shared.measuring = true;
    int64_t nextSample = t0 + 500'000'000;
    while (true) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const int64_t now = nowNs();
        const double elapsed = static_cast<double>(now - t0) / 1e9;
        if (o.events ? shared.sentEvents - sent0 >= o.events : elapsed >= o.durationS)
            break;
        if (now >= nextSample) {
            // The same scrapes with and without exporters, so that they cost both runs alike.
            nextSample += 500'000'000;
            bool any = false;
            const double lag = largestExportLag(scrape(metrics), any);
            if (any)
                m.lagSamples.push_back(lag);
        }
    }
    shared.measuring = false;
    const int64_t t1 = nowNs();
    auto m1 = scrape(metrics);
    ProcessUsage u1 = usageOf(pid);
    shared.stop = true;
    for (auto& t : producers)
        t.join();

    m.seconds = static_cast<double>(t1 - t0) / 1e9;
    auto delta = [&](const std::string& series) { return m1[series] - m0[series]; };
    const double committed = delta("sluice_events_committed_total");
    m.committedPerS = committed / m.seconds;
    m.ackedPerS = static_cast<double>(shared.ackedInWindow) / m.seconds;
    m.batches = delta("sluice_batches_total");
    if (committed > 0) {
        m.keysCreatedPerEvent = delta("sluice_keys_created_total") / committed;
        m.keysLoadedPerEvent = delta("sluice_keys_loaded_total") / committed;
    }
    m.cpuSeconds = u1.cpuSeconds - u0.cpuSeconds;
    m.peakRssMiB = u1.peakRssMiB;
    m.rssMiB = u1.rssMiB;
    m.exportedPerS = (sumOf(m1, "sluice_export_records_total") - sumOf(m0, "sluice_export_records_total")) / m.seconds;
    {
        std::lock_guard lock(shared.latencyMutex);
        std::vector<int64_t>& lat = shared.latenciesNs;
        m.requests = lat.size();
        m.p50Ms = percentile(lat, 0.50);
        m.p99Ms = percentile(lat, 0.99);
        m.maxMs = percentile(lat, 1.0);
    }
    for (std::string_view s : service::kStageNames) {
        const double us = delta("sluice_stage_microseconds_total{stage=\"" + std::string(s) + "\"}");
        m.stageUsPerEvent[std::string(s)] = committed > 0 ? us / committed : 0;
    }
    for (std::string_view s : service::kLatencySteps) {
        const std::string label = "{step=\"" + std::string(s) + "\"}";
        const double us = delta("sluice_latency_step_microseconds_total" + label);
        const double samples = delta("sluice_latency_step_samples_total" + label);
        m.latencyStepsMs.emplace_back(std::string(s), samples > 0 ? us / samples / 1000 : 0);
    }
    for (std::string_view s : service::kBatchLatencySteps) {
        const std::string prefix = "sluice_latency_step_seconds_bucket{step=\"" + std::string(s) + "\",le=\"";
        std::vector<std::pair<double, double>> cumulative;  // (upper bound, batches at most that long)
        for (auto it = m1.lower_bound(prefix); it != m1.end() && it->first.rfind(prefix, 0) == 0; ++it) {
            const std::string le = it->first.substr(prefix.size(), it->first.size() - prefix.size() - 2);
            const double bound = le == "+Inf" ? std::numeric_limits<double>::infinity() : std::atof(le.c_str());
            cumulative.emplace_back(bound, it->second - m0[it->first]);
        }
        std::sort(cumulative.begin(), cumulative.end());
        if (cumulative.empty() || cumulative.back().second <= 0)
            continue;
        const double wanted = 0.99 * cumulative.back().second;
        for (const auto& [bound, count] : cumulative)
            if (count >= wanted) {
                m.latencyStepsP99Ms.emplace_back(std::string(s), bound * 1000);
                break;
            }
    }
    // Threads that used at least 0.01 µs per event (the daemon's own and ZeroMQ's I/O threads).
    for (const auto& [name, after] : u1.threadCpuSeconds) {
        auto before = u0.threadCpuSeconds.find(name);
        const double used = after - (before == u0.threadCpuSeconds.end() ? 0 : before->second);
        if (committed > 0 && used / committed * 1e6 >= 0.01)
            m.threadCpuUsPerEvent[name] = used / committed * 1e6;
    }
    m.errors = shared.errors;
    return m;
}

// A run against a daemon of our own with `exporters` (none: without); Kafka goes to a mock
// cluster in this process, a new one per run (a new database starts again from batch 1).
std::optional<Measurement> measureOwn(const BenchOptions& o, const std::vector<std::string>& exporters,
                                      const std::vector<std::vector<std::string>>& messages)
{
#ifdef SLUICE_HAVE_KAFKA
    std::unique_ptr<exports::KafkaMockCluster> kafka;
    if (std::find(exporters.begin(), exporters.end(), "kafka") != exporters.end()) {
        auto cluster = exports::KafkaMockCluster::start(
            {{"sluice.acme_checkout_1_0_0", 4}, {"sluice.analytics", 4}, {"sluice.revenue_by_country", 4}});
        if (!cluster) {
            o.io->err << "sluicectl bench: " << cluster.status().message() << "\n";
            return std::nullopt;
        }
        kafka = std::move(*cluster);
    }
#endif
    OwnDaemon own;
    own.keep = o.keep;
#ifdef SLUICE_HAVE_KAFKA
    if (kafka)
        own.kafkaBootstrap = kafka->bootstrap();
#endif
    if (!own.start(o, exporters))
        return std::nullopt;
    Measurement m = measure(o, o.mode == "ack" ? own.routerEndpoint : own.pullEndpoint, own.metricsAddress, own.pid,
                            messages);
    own.stop();
    return m;
}

void printMeasurement(const BenchOptions& o, const Measurement& m)
{
    std::ostream& out = o.io->out;
    const double committed = m.committed();
    const double cpuPerMillion = committed > 0 ? m.cpuSeconds / committed * 1e6 : 0;
    if (o.json) {
        Json j;
        j["aggregation"] = o.aggregation;
        j["mode"] = o.mode;
        j["producers"] = o.producers;
        j["events_per_message"] = o.eventsPerMessage;
        j["offered_rate"] = rounded(o.rate, 0);
        j["seconds"] = rounded(m.seconds, 2);
        j["committed_per_s"] = rounded(m.committedPerS, 0);
        j["acknowledged_per_s"] = rounded(m.ackedPerS, 0);
        j["ack_p50_ms"] = rounded(m.p50Ms, 2);
        j["ack_p99_ms"] = rounded(m.p99Ms, 2);
        j["ack_max_ms"] = rounded(m.maxMs, 2);
        j["cpu_s_per_million"] = rounded(cpuPerMillion, 3);
        j["peak_rss_mib"] = rounded(m.peakRssMiB, 1);
        j["batches"] = rounded(m.batches, 0);
        j["mean_batch"] = rounded(m.batches > 0 ? committed / m.batches : 0, 0);
        j["keys_created_per_event"] = rounded(m.keysCreatedPerEvent, 3);
        j["keys_loaded_per_event"] = rounded(m.keysLoadedPerEvent, 3);
        for (const auto& [stage, us] : m.stageUsPerEvent)
            j[stage + "_us_per_event"] = rounded(us, 3);
        j["latency_steps_ms"] = Json::object();
        for (const auto& [step, ms] : m.latencyStepsMs)
            j["latency_steps_ms"][step] = rounded(ms, 3);
        j["latency_steps_p99_ms"] = Json::object();
        for (const auto& [step, ms] : m.latencyStepsP99Ms)
            j["latency_steps_p99_ms"][step] = rounded(ms, 3);
        j["thread_cpu_us_per_event"] = Json::object();
        for (const auto& [name, us] : m.threadCpuUsPerEvent)
            j["thread_cpu_us_per_event"][name] = rounded(us, 3);
        if (!m.lagSamples.empty()) {
            j["exported_records_per_s"] = rounded(m.exportedPerS, 0);
            j["export_lag_median_s"] = rounded(m.lagMedian(), 2);
            j["export_lag_max_s"] = rounded(m.lagMax(), 2);
        }
        j["errors"] = m.errors;
        out << j.dump() << "\n";
        return;
    }
    print(out, "sluice bench: reference workload, %s windows, %s mode, %d producers, %u events/message, %s\n",
          o.aggregation.c_str(), o.mode == "ack" ? "acknowledged" : "fire-and-forget", o.producers, o.eventsPerMessage,
          o.rate > 0 ? ("open loop at " + std::to_string(static_cast<long>(o.rate)) + " events/s").c_str()
                     : "closed loop");
    print(out, "  measured        %.1f s (after %.1f s warm-up%s)\n", m.seconds, o.warmupS,
          o.warmupPass ? " and one pass of the messages" : "");
    print(out, "  committed       %.0f events/s\n", m.committedPerS);
    if (o.mode == "ack") {
        print(out, "  acknowledged    %.0f events/s\n", m.ackedPerS);
        print(out, "  ack latency     p50 %.1f ms, p99 %.1f ms, max %.1f ms (%zu requests)\n", m.p50Ms, m.p99Ms,
              m.maxMs, m.requests);
        out << "  latency steps   mean ms:";
        const char* sep = " ";
        for (const auto& [step, ms] : m.latencyStepsMs) {
            print(out, "%s%s %.2f", sep, step.c_str(), ms);
            sep = ", ";
        }
        out << " (close_wait per request; the rest per batch)\n";
        if (!m.latencyStepsP99Ms.empty()) {
            out << "  batch steps     p99 ms at most:";
            sep = " ";
            for (const auto& [step, ms] : m.latencyStepsP99Ms) {
                print(out, "%s%s %g", sep, step.c_str(), ms);
                sep = ", ";
            }
            out << " (histogram bucket bounds)\n";
        }
    }
    if (m.cpuSeconds > 0) {
        print(out, "  daemon CPU      %.2f s per million events (%.2f cores)\n", cpuPerMillion,
              m.cpuSeconds / m.seconds);
        print(out, "  daemon memory   peak RSS %.1f MiB, now %.1f MiB\n", m.peakRssMiB, m.rssMiB);
    }
    print(out, "  batches         %.0f, mean %.0f events\n", m.batches, m.batches > 0 ? committed / m.batches : 0);
    print(out, "  keys per event  %.3f created, %.3f read back from the database\n", m.keysCreatedPerEvent,
          m.keysLoadedPerEvent);
    const auto& st = m.stageUsPerEvent;
    print(out,
          "  stage wall time per event (µs): receive %.2f, parse %.2f, transform %.2f, aggregate %.2f, "
          "write %.2f, commit %.2f\n",
          st.at("receive"), st.at("parse"), st.at("transform"), st.at("aggregate"), st.at("write"), st.at("commit"));
    if (!m.threadCpuUsPerEvent.empty()) {
        out << "  thread CPU per event (µs):";
        const char* sep = " ";
        for (const auto& [name, us] : m.threadCpuUsPerEvent) {
            print(out, "%s%s %.2f", sep, name.c_str(), us);
            sep = ", ";
        }
        out << "\n";
    }
    if (!m.lagSamples.empty())
        print(out, "  exporters       %.0f records/s handed to the sinks, lag median %.2f s, max %.2f s\n",
              m.exportedPerS, m.lagMedian(), m.lagMax());
    if (m.errors)
        print(out, "  errors          %llu\n", static_cast<unsigned long long>(m.errors));
}

double medianOf(const std::vector<Measurement>& runs, const std::function<double(const Measurement&)>& f)
{
    std::vector<double> v;
    for (const Measurement& m : runs)
        v.push_back(f(m));
    return median(std::move(v));
}

// Medians per window shape and their ratios to tumbling (runs of one invocation, interleaved).
void printWindowComparison(const BenchOptions& o, const std::vector<std::string>& shapes,
                           const std::vector<std::vector<Measurement>>& runs)
{
    auto committed = [](const Measurement& m) { return m.committedPerS; };
    auto cpu = [](const Measurement& m) { return m.committed() > 0 ? m.cpuSeconds / m.committed() * 1e6 : 0; };
    auto rss = [](const Measurement& m) { return m.peakRssMiB; };
    auto aggregate = [](const Measurement& m) {
        auto it = m.stageUsPerEvent.find("aggregate");
        return it == m.stageUsPerEvent.end() ? 0.0 : it->second;
    };
    const double base = medianOf(runs[0], committed);
    std::ostream& out = o.io->out;
    if (o.json) {
        Json j;
        j["runs"] = runs[0].size();
        for (size_t i = 0; i < shapes.size(); ++i)
            j[shapes[i]] = {{"committed_per_s", rounded(medianOf(runs[i], committed), 0)},
                            {"ratio", rounded(base > 0 ? medianOf(runs[i], committed) / base : 0, 3)},
                            {"cpu_s_per_million", rounded(medianOf(runs[i], cpu), 3)},
                            {"peak_rss_mib", rounded(medianOf(runs[i], rss), 1)},
                            {"aggregate_us_per_event", rounded(medianOf(runs[i], aggregate), 3)}};
        out << j.dump() << "\n";
        return;
    }
    print(out, "sluice bench: %zu runs of each window shape, interleaved; medians\n", runs[0].size());
    print(out, "  %-10s %16s %8s %16s %14s %16s\n", "window", "committed ev/s", "ratio", "CPU s/M events",
          "peak RSS MiB", "aggregate us/ev");
    for (size_t i = 0; i < shapes.size(); ++i)
        print(out, "  %-10s %16.0f %8.2f %16.2f %14.1f %16.2f\n", shapes[i].c_str(), medianOf(runs[i], committed),
              base > 0 ? medianOf(runs[i], committed) / base : 0, medianOf(runs[i], cpu), medianOf(runs[i], rss),
              medianOf(runs[i], aggregate));
}

void printComparison(const BenchOptions& o, const std::vector<Measurement>& without,
                     const std::vector<Measurement>& with, double steadyRate, const std::vector<Measurement>& steady)
{
    auto committed = [](const Measurement& m) { return m.committedPerS; };
    auto cpu = [](const Measurement& m) { return m.committed() > 0 ? m.cpuSeconds / m.committed() * 1e6 : 0; };
    auto rss = [](const Measurement& m) { return m.peakRssMiB; };
    auto p99 = [](const Measurement& m) { return m.p99Ms; };
    const double a = medianOf(without, committed), b = medianOf(with, committed);
    std::string exporters;
    for (const std::string& e : o.exporters)
        exporters += (exporters.empty() ? "" : ",") + e;
    std::ostream& out = o.io->out;
    auto exported = [](const Measurement& m) { return m.exportedPerS; };
    auto lagMedian = [](const Measurement& m) { return m.lagMedian(); };
    auto lagMax = [](const Measurement& m) { return m.lagMax(); };
    if (o.json) {
        Json j;
        j["exporters"] = exporters;
        j["runs"] = with.size();
        j["without_committed_per_s"] = rounded(a, 0);
        j["with_committed_per_s"] = rounded(b, 0);
        j["ratio"] = rounded(a > 0 ? b / a : 0, 3);
        j["without_peak_rss_mib"] = rounded(medianOf(without, rss), 1);
        j["with_peak_rss_mib"] = rounded(medianOf(with, rss), 1);
        j["without_cpu_s_per_million"] = rounded(medianOf(without, cpu), 3);
        j["with_cpu_s_per_million"] = rounded(medianOf(with, cpu), 3);
        j["with_exported_records_per_s"] = rounded(medianOf(with, exported), 0);
        j["export_lag_median_s"] = rounded(medianOf(with, lagMedian), 2);
        j["export_lag_max_s"] = rounded(medianOf(with, lagMax), 2);
        if (!steady.empty())
            j["steady"] = {{"share", o.steady},
                           {"offered_per_s", rounded(steadyRate, 0)},
                           {"committed_per_s", rounded(medianOf(steady, committed), 0)},
                           {"exported_records_per_s", rounded(medianOf(steady, exported), 0)},
                           {"peak_rss_mib", rounded(medianOf(steady, rss), 1)},
                           {"export_lag_median_s", rounded(medianOf(steady, lagMedian), 2)},
                           {"export_lag_max_s", rounded(medianOf(steady, lagMax), 2)}};
        out << j.dump() << "\n";
        return;
    }
    print(out, "sluice bench: %zu runs without and %zu with exporters (%s), alternating; medians\n", without.size(),
          with.size(), exporters.c_str());
    print(out, "  %-28s %14s %14s\n", "", "without", "with");
    print(out, "  %-28s %14.0f %14.0f   ratio %.2f\n", "committed events/s", a, b, a > 0 ? b / a : 0);
    print(out, "  %-28s %14.2f %14.2f\n", "daemon CPU s per million", medianOf(without, cpu), medianOf(with, cpu));
    print(out, "  %-28s %14.1f %14.1f\n", "daemon peak RSS MiB", medianOf(without, rss), medianOf(with, rss));
    print(out, "  %-28s %14.1f %14.1f\n", "ack latency p99 ms", medianOf(without, p99), medianOf(with, p99));
    print(out, "  %-28s %14s %14.0f\n", "records to the sinks /s", "", medianOf(with, exported));
    print(out, "  %-28s %14s %14.2f\n", "export lag median s", "", medianOf(with, lagMedian));
    print(out, "  %-28s %14s %14.2f\n", "export lag max s", "", medianOf(with, lagMax));
    out << "  per run (events/s):";
    for (size_t i = 0; i < without.size(); ++i)
        print(out, " %.0f/%.0f", without[i].committedPerS, i < with.size() ? with[i].committedPerS : 0);
    out << "\n";
    if (steady.empty())
        return;
    print(out, "steady state: %zu runs with exporters, %.0f events/s offered (%.2f of the rate without); medians\n",
          steady.size(), steadyRate, o.steady);
    print(out, "  %-28s %14.0f\n", "committed events/s", medianOf(steady, committed));
    print(out, "  %-28s %14.0f\n", "records to the sinks /s", medianOf(steady, exported));
    print(out, "  %-28s %14.1f\n", "daemon peak RSS MiB", medianOf(steady, rss));
    print(out, "  %-28s %14.2f\n", "steady export lag median s", medianOf(steady, lagMedian));
    print(out, "  %-28s %14.2f\n", "steady export lag max s", medianOf(steady, lagMax));
}

}  // namespace

std::string benchPipelineConfig(const std::string& shape, const std::filesystem::path& dir)
{
    if (shape == "tumbling")
        return "contracts = builtin:\npipelines = builtin:\n";
    const std::string window = shape == "sliding"
                                   ? R"({"type": "sliding", "size": "5m", "slide": "1m"}, "group_by": ["country"])"
                                   : R"({"type": "session", "gap": "30m"}, "group_by": ["session_id"])";
    fs::create_directories(dir / "contracts");
    fs::create_directories(dir / "pipelines");
    std::ofstream(dir / "contracts" / "acme.json") << config::kBuiltinContract;
    std::ofstream(dir / "pipelines" / "acme.json")
        << R"J({"contract": "acme/checkout/1.0.0", "outputs": [{"name": "analytics", "type": "granular",
  "purposes": [1, 2], "mask": {"fields": ["email"], "algorithm": "hmac-sha256"}}],
 "aggregations": [{"name": "revenue_by_country", "window": )J"
        << window << R"J(, "metrics": ["count", "sum(total)", "distinct(customer_id)"],
  "allowed_lateness": "30s", "min_group_size": 5}]})J";
    return "contracts = " + (dir / "contracts").string() + "\npipelines = " + (dir / "pipelines").string() + "\n";
}

namespace {

const Command kBench = {
    "bench",
    "[options]",
    "Drives a sluiced (its own by default, or --endpoint) with the reference workload and reports\n"
    "committed and acknowledged events/s, acknowledgement latency, the daemon's CPU and memory, batch\n"
    "sizes and where the time goes per stage. Other benchmarks: --job, --reprocess, --latency-table,\n"
    "--compare-pipeline (each has its own --help).",
    R"(Exit codes: 0 done, 64 bad options, 69 the daemon could not be started, 75 the producers met
errors while measuring (counted in the output).

Example:
  sluicectl bench --duration 10
  sluicectl bench --exporters file,stream,kafka --compare 3 --duration 6 --warmup 2
)",
};

}  // namespace

int runBench(const std::vector<std::string>& args, Io& io)
{
    if (std::find(args.begin(), args.end(), "--job") != args.end())
        return runBenchJob(args, io);
    if (std::find(args.begin(), args.end(), "--reprocess") != args.end())
        return runBenchReprocess(args);
    BenchOptions o;
    o.io = &io;
    po::options_description options = optionGroup();
    options.add_options()
        ("endpoint", po::value(&o.endpoint), "target a running sluiced at this endpoint (default: start one)")
        ("metrics", po::value(&o.metrics), "host:port of the target's metrics endpoint")
        ("pid", po::value(&o.pid), "pid of the target daemon (for CPU and memory figures)")
        ("sluiced", po::value(&o.sluiced), "sluiced binary to start (default: next to sluicectl)")
        ("mode", po::value(&o.mode), "ack (acknowledged, default) or ff (fire-and-forget)")
        ("producers", po::value(&o.producers), "producer threads (default 4)")
        ("events-per-message", po::value(&o.eventsPerMessage), "events per message (default 100)")
        ("rate", po::value(&o.rate), "offered load in events/s, open loop (default: closed loop, as fast as acked)")
        ("duration", po::value(&o.durationS), "measured seconds (default 10)")
        ("events", po::value(&o.events), "stop after this many events instead")
        ("warmup", po::value(&o.warmupS), "seconds before measuring (default 3: keys get created)")
        ("warmup-pass", po::bool_switch(&o.warmupPass),
         "after --warmup, also wait until every producer's messages were acknowledged once (with many "
         "--sessions: every key exists, what is measured is the steady state)")
        ("window", po::value(&o.window), "requests in flight per producer, closed loop (default 256)")
        ("workers", po::value(&o.workers), "transform workers of the daemon we start")
        ("config-line", po::value<std::vector<std::string>>(), "extra INI line for the daemon we start (repeatable)")
        ("exporters", po::value<std::string>(), "exporters of the daemon we start: file,stream,kafka (any of them)")
        ("compare", po::value(&o.compare), "N runs without and N with the exporters, alternating; prints medians")
        ("steady", po::value(&o.steady),
         "with --compare: then N runs with the exporters at this share of the median rate without them, "
         "open loop, for the export lag in a steady state (default 0.25; 0: none)")
        ("aggregation", po::value(&o.aggregation),
         "window shape of the daemon we start: tumbling (default: the built-in pipeline), sliding (5m every 1m), "
         "session (30m gap by session_id: 100,000 open sessions)")
        ("sessions", po::value(&o.sessions),
         "distinct session_id values, each a data key (default 100000; each producer cycles through "
         "1500 messages, 600,000 events with the defaults)")
        ("compare-windows", po::value(&o.compareWindows),
         "N rounds of tumbling, sliding and session runs, interleaved; prints medians and ratios to tumbling")
        ("keep", po::bool_switch(&o.keep), "keep the daemon's temp directory")
        ("json", po::bool_switch(&o.json), "print the results as JSON")
        ("latency-table", "instead: p50/p99 against max_delay at C/4 and C/2 (see --latency-table --help)")
        ("compare-pipeline", "instead: the ratio to a single-thread in-process pipeline (see --compare-pipeline --help)")
        ("reprocess", "instead: sluicectl reprocess against the daemon's ingest rate (see --reprocess --help)");
    po::variables_map vm;
    if (!parseCommandLine(kBench, args, options, vm, io))
        return kExitOk;
    if (vm.count("config-line"))
        for (const auto& line : vm["config-line"].as<std::vector<std::string>>())
            o.extraConfig += line + "\n";
    if (vm.count("exporters")) {
        std::stringstream list(vm["exporters"].as<std::string>());
        for (std::string e; std::getline(list, e, ',');)
            if (!e.empty())
                o.exporters.push_back(e);
    }
    if (o.mode != "ack" && o.mode != "ff") {
        throw Failure(kExitUsage, "--mode is ack or ff");
    }

    const bool own = o.endpoint.empty();
    for (const std::string& e : o.exporters) {
        if (e != "file" && e != "stream" && e != "kafka") {
            throw Failure(kExitUsage, "--exporters takes file, stream and kafka, not '" + e + "'");
        }
#ifndef SLUICE_HAVE_KAFKA
        if (e == "kafka") {
            throw Failure(kExitUsage, "this build has no Kafka exporter");
        }
#endif
    }
    if (!own && (!o.exporters.empty() || o.compare > 0)) {
        throw Failure(kExitUsage, "--exporters and --compare need the daemon bench starts (no --endpoint)");
    }
    if (o.aggregation != "tumbling" && o.aggregation != "sliding" && o.aggregation != "session") {
        throw Failure(kExitUsage, "--aggregation takes tumbling, sliding or session, not '" + o.aggregation + "'");
    }
    if (!own && (o.aggregation != "tumbling" || o.compareWindows > 0)) {
        throw Failure(kExitUsage, "--aggregation and --compare-windows need the daemon bench starts (no --endpoint)");
    }
    if (o.compare > 0 && o.compareWindows > 0) {
        throw Failure(kExitUsage, "--compare and --compare-windows do not combine");
    }
    if (o.compare > 0 && o.exporters.empty()) {
        throw Failure(kExitUsage, "--compare needs --exporters");
    }
    if (o.steady < 0 || o.steady > 1) {
        throw Failure(kExitUsage, "--steady is a share of the rate, from 0 to 1");
    }
    if (o.sessions == 0) {
        throw Failure(kExitUsage, "--sessions must be at least 1");
    }
    std::string endpoint = o.endpoint;
    const int pid = o.pid;
    if (own) {
        if (o.sluiced.empty()) {
            std::error_code ec;
            fs::path self = fs::read_symlink("/proc/self/exe", ec);
            for (fs::path candidate : {self.parent_path() / "sluiced", self.parent_path().parent_path() / "sluiced"})
                if (fs::exists(candidate, ec)) {
                    o.sluiced = candidate.string();
                    break;
                }
        }
        if (o.sluiced.empty()) {
            throw Failure(kExitUnavailable, "cannot find sluiced; pass --sluiced");
        }
    }

    io.err << "bench: generating messages...\n";
    std::vector<std::vector<std::string>> messages(static_cast<size_t>(o.producers));
    {
        std::vector<std::thread> gens;
        for (int p = 0; p < o.producers; ++p)
            gens.emplace_back(
                [&, p] { messages[static_cast<size_t>(p)] = makeMessages(p, 1500, o.eventsPerMessage, o.sessions); });
        for (auto& t : gens)
            t.join();
    }

    if (o.compareWindows > 0) {
        // Each shape against a daemon of its own, in rotating order, so that drift in the
        // machine's load falls on all three alike.
        const std::vector<std::string> shapes = {"tumbling", "sliding", "session"};
        std::vector<std::vector<Measurement>> runs(shapes.size());
        for (int i = 0; i < o.compareWindows; ++i) {
            for (size_t k = 0; k < shapes.size(); ++k) {
                const size_t s = (k + static_cast<size_t>(i)) % shapes.size();
                BenchOptions shaped = o;
                shaped.aggregation = shapes[s];
                io.err << "bench: round " << i + 1 << " of " << o.compareWindows << ", " << shapes[s] << " windows\n";
                auto m = measureOwn(shaped, o.exporters, messages);
                if (!m)
                    return kExitUnavailable;
                runs[s].push_back(std::move(*m));
            }
        }
        printWindowComparison(o, shapes, runs);
        for (const auto& shapeRuns : runs)
            for (const Measurement& m : shapeRuns)
                if (m.errors)
                    return kExitTempFail;
        return kExitOk;
    }

    if (o.compare > 0) {
        // Without and with the exporters, alternating (ABBA), each run against a daemon of its own.
        std::vector<Measurement> without, with;
        for (int i = 0; i < o.compare; ++i) {
            for (bool exporting : i % 2 == 0 ? std::vector<bool>{false, true} : std::vector<bool>{true, false}) {
                io.err << "bench: run " << i + 1 << " of " << o.compare << (exporting ? ", with" : ", without")
                          << " exporters\n";
                auto m = measureOwn(o, exporting ? o.exporters : std::vector<std::string>{}, messages);
                if (!m)
                    return kExitUnavailable;
                (exporting ? with : without).push_back(std::move(*m));
            }
        }
        // The lag where the exporters can keep pace: below saturation, open loop.
        std::vector<Measurement> steady;
        const double steadyRate =
            o.steady * medianOf(without, [](const Measurement& m) { return m.committedPerS; });
        if (steadyRate > 0) {
            BenchOptions so = o;
            so.rate = steadyRate;
            for (int i = 0; i < o.compare; ++i) {
                io.err << "bench: steady run " << i + 1 << " of " << o.compare << ", with exporters at "
                       << static_cast<int64_t>(steadyRate) << " events/s\n";
                auto m = measureOwn(so, o.exporters, messages);
                if (!m)
                    return kExitUnavailable;
                steady.push_back(std::move(*m));
            }
        }
        printComparison(o, without, with, steadyRate, steady);
        for (const auto& runs : {without, with, steady})
            for (const Measurement& m : runs)
                if (m.errors)
                    return kExitTempFail;
        return kExitOk;
    }

    Measurement m;
    if (own) {
        auto measured = measureOwn(o, o.exporters, messages);
        if (!measured)
            return kExitUnavailable;
        m = std::move(*measured);
    } else {
        m = measure(o, endpoint, o.metrics, pid, messages);
    }
    printMeasurement(o, m);
    return m.errors ? kExitTempFail : kExitOk;
}

}  // namespace sluice::cli
