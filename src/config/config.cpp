#include "config/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <boost/program_options.hpp>

#include "config/builtin.h"
#include "core/encoding.h"
#include "core/time_format.h"

namespace sluice::config {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;

// Every key of the INI file, with its help text. Defaults live in the Config structs; options
// are read as text and converted here, so a bad value gets a message in our words.
struct Key {
    const char* name;
    bool multi;
    const char* help;
};

constexpr Key kFileKeys[] = {
    {"service.state_dir", false, "directory of the database and local secrets"},
    {"service.workers", false, "transform threads (auto = number of cores)"},
    {"service.exporter_nice", false, "nice value of the exporter threads (0-19; higher yields more CPU to ingest)"},
    {"service.exporter_busy_percent", false,
     "while the pipeline is saturated, the share of the time each exporter works (1-100; 100: never yields)"},
    {"log.level", false, "error, warning, notice, info or debug"},
    {"ingest.pull", true, "fire-and-forget endpoint (PULL), e.g. tcp://127.0.0.1:7400; repeatable"},
    {"ingest.router", true, "acknowledged endpoint (ROUTER), e.g. tcp://127.0.0.1:7401; repeatable"},
    {"ingest.receive_hwm", false, "messages queued per producer before ZeroMQ pushes back"},
    {"ingest.send_hwm", false, "acknowledgements queued per producer"},
    {"ingest.max_message_size", false, "largest accepted message (bytes; k/M suffixes)"},
    {"ingest.max_event_size", false, "largest accepted event"},
    {"ingest.max_depth", false, "deepest accepted JSON nesting"},
    {"ingest.handshake_interval", false, "ZeroMQ handshake timeout"},
    {"ingest.heartbeat_interval", false, "ZeroMQ heartbeat interval (0 = off)"},
    {"ingest.heartbeat_timeout", false, "ZeroMQ heartbeat timeout"},
    {"ingest.dedupe_window", false, "sequence numbers remembered per acknowledged producer"},
    {"ingest.dedupe_retention", false, "forget producers silent for this long"},
    {"ingest.curve_secret_key_file", false, "CURVE: the daemon's secret key (32 bytes or 64 hex digits); turns CURVE on"},
    {"ingest.curve_clients_file", false, "CURVE: public keys of the producers allowed in (Z85 or hex, one per line)"},
    {"batch.max_events", false, "close a batch at this many events"},
    {"batch.max_bytes", false, "close a batch at this many bytes"},
    {"batch.max_delay", false, "close a batch this long after its first message"},
    {"batch.close_when_idle", false, "also close a batch as soon as every batch before it is durable (yes/no)"},
    {"store.database", false, "SQLite file (relative to state_dir)"},
    {"store.dead_letter_input", false, "bytes of a rejected input kept (encrypted) with its dead letter"},
    {"store.dead_letter_retention", false, "how long dead letters are kept"},
    {"store.cache_size", false, "SQLite page cache of the writer"},
    {"privacy.master_key_file", false, "32-byte master key file (relative to state_dir)"},
    {"privacy.master_key_credential", false, "systemd credential holding the master key"},
    {"privacy.key_lifetime", false, "how long a data key encrypts new events"},
    {"privacy.key_cache", false, "active data keys kept in memory"},
    {"pipeline.contracts", false, "directory of contract files, or builtin:"},
    {"pipeline.pipelines", false, "directory of pipeline files (outputs, aggregations), or builtin:"},
    {"pipeline.exporters", false, "directory of exporter files (files, ZeroMQ stream, Kafka); empty = none"},
    {"pipeline.max_future", false, "refuse event times further ahead of the clock"},
    {"pipeline.session_snapshot_interval", false, "write session windows' open sessions this often (0 = every batch)"},
    {"metrics.listen", false, "host:port of the Prometheus endpoint (empty = off)"},
    {"testing.stall_writer_file", false, "(tests) stall the writer while this file exists"},
    {"testing.fail_writes_file", false, "(tests) fail database writes while this file exists"},
    {"testing.export_piece_rows", false, "(tests) exporters read events and derived rows this many rowids at a time"},
};

po::options_description fileOptions()
{
    po::options_description desc("Configuration (INI keys; also accepted on the command line as --section.key=value)");
    for (const Key& k : kFileKeys) {
        if (k.multi)
            desc.add_options()(k.name, po::value<std::vector<std::string>>(), k.help);
        else
            desc.add_options()(k.name, po::value<std::string>(), k.help);
    }
    return desc;
}

po::options_description commandOptions()
{
    po::options_description desc("sluiced options");
    desc.add_options()
        ("help,h", "print this help")
        ("version", "print the version")
        ("config,c", po::value<std::string>(), "configuration file (default: the embedded configuration)")
        ("check-config", "check the configuration, contracts and pipelines, then exit (78 on error)")
        ("demo", "create a master key if missing, feed sample events, print an SQL summary, keep running")
        ("state-dir", po::value<std::string>(), "same as service.state_dir")
        ("log-level", po::value<std::string>(), "same as log.level");
    return desc;
}

class Reader {
public:
    Reader(const po::variables_map& vm, std::string origin) : vm_(vm), origin_(std::move(origin)) {}

    bool has(const char* key) const { return vm_.count(key) > 0; }
    std::string text(const char* key, std::string fallback) const
    {
        return has(key) ? vm_[key].as<std::string>() : fallback;
    }
    std::vector<std::string> list(const char* key) const
    {
        return has(key) ? vm_[key].as<std::vector<std::string>>() : std::vector<std::string>{};
    }

    Status size(const char* key, uint64_t& out, uint64_t min, uint64_t max) const
    {
        if (!has(key))
            return Status::ok();
        auto v = parseSize(vm_[key].as<std::string>());
        if (!v || *v < min || *v > max)
            return error(key, "'" + vm_[key].as<std::string>() + "' is not a size from " + std::to_string(min) +
                                  " to " + std::to_string(max) + " (suffixes k, M, G)");
        out = *v;
        return Status::ok();
    }
    Status duration(const char* key, int64_t& out, int64_t min, int64_t max) const
    {
        if (!has(key))
            return Status::ok();
        auto v = parseDurationMs(vm_[key].as<std::string>());
        if (!v || *v < min || *v > max)
            return error(key, "'" + vm_[key].as<std::string>() + "' is not a duration from " + std::to_string(min) +
                                  "ms to " + std::to_string(max) + "ms (suffixes ms, s, m, h, d)");
        out = *v;
        return Status::ok();
    }
    Status yesNo(const char* key, bool& out) const
    {
        if (!has(key))
            return Status::ok();
        const std::string& s = vm_[key].as<std::string>();
        if (s == "yes" || s == "true" || s == "1")
            out = true;
        else if (s == "no" || s == "false" || s == "0")
            out = false;
        else
            return error(key, "'" + s + "' is not yes or no");
        return Status::ok();
    }
    template <typename Int>
    Status integer(const char* key, Int& out, int64_t min, int64_t max) const
    {
        if (!has(key))
            return Status::ok();
        const std::string& s = vm_[key].as<std::string>();
        char* end = nullptr;
        errno = 0;
        long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end || errno || v < min || v > max)
            return error(key, "'" + s + "' is not an integer from " + std::to_string(min) + " to " + std::to_string(max));
        out = static_cast<Int>(v);
        return Status::ok();
    }
    Status error(const char* key, const std::string& problem) const
    {
        return Status::invalid(origin_ + ": " + key + ": " + problem);
    }

private:
    const po::variables_map& vm_;
    std::string origin_;
};

std::string absoluteFrom(const fs::path& base, const std::string& path)
{
    if (path.empty() || path == kBuiltinSource)
        return path;
    fs::path p(path);
    if (p.is_relative())
        p = base / p;
    return p.lexically_normal().string();
}

// The allow-list of CURVE clients: one public key per line (40 Z85 characters or 64 hex
// digits), blank lines and lines starting with '#' ignored. An empty list is an error: nobody could connect.
Result<std::vector<std::string>> readCurveClients(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        return Status::invalid(path + ": cannot be read");
    std::vector<std::string> keys;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos || line[first] == '#')
            continue;  // '#' starts a comment only at the start of a line: it is a Z85 character
        const auto last = line.find_last_not_of(" \t\r");
        auto key = curveKeyFromText(std::string_view(line).substr(first, last - first + 1));
        if (!key)
            return Status::invalid(path + ":" + std::to_string(number) +
                                   ": not a CURVE public key (40 Z85 characters or 64 hex digits)");
        keys.push_back(std::move(*key));
    }
    if (keys.empty())
        return Status::invalid(path + ": lists no client key, so no producer could connect");
    return keys;
}

Status fill(const po::variables_map& vm, const std::string& origin, const fs::path& fileDir, Config& c)
{
    Reader r(vm, origin);
    const char* stateEnv = std::getenv("STATE_DIRECTORY");  // set by systemd's StateDirectory=
    std::string state = r.has("state-dir") ? r.text("state-dir", "") : r.text("service.state_dir", "");
    if (state.empty())
        state = stateEnv && *stateEnv ? std::string(stateEnv) : std::string("/var/lib/sluice");
    c.stateDir = absoluteFrom(r.has("state-dir") ? fs::current_path() : fileDir, state);

    std::string workers = r.text("service.workers", "auto");
    if (workers == "auto") {
        unsigned n = std::thread::hardware_concurrency();
        c.workers = n == 0 ? 2 : static_cast<int>(std::min(n, 8u));
    } else {
        SLUICE_RETURN_IF_ERROR(r.integer("service.workers", c.workers, 1, 64));
    }
    SLUICE_RETURN_IF_ERROR(r.integer("service.exporter_nice", c.exporterNice, 0, 19));
    SLUICE_RETURN_IF_ERROR(r.integer("service.exporter_busy_percent", c.exporterBusyPercent, 1, 100));
    c.logLevel = r.has("log-level") ? r.text("log-level", "info") : r.text("log.level", "info");
    if (c.logLevel != "error" && c.logLevel != "warning" && c.logLevel != "notice" && c.logLevel != "info" &&
        c.logLevel != "debug")
        return r.error("log.level", "'" + c.logLevel + "' is not one of error, warning, notice, info, debug");

    IngestConfig& in = c.ingest;
    in.pull = r.list("ingest.pull");
    in.router = r.list("ingest.router");
    for (const auto* list : {&in.pull, &in.router}) {
        for (const std::string& e : *list) {
            if (e.rfind("tcp://", 0) != 0 && e.rfind("ipc://", 0) != 0 && e.rfind("inproc://", 0) != 0)
                return r.error(list == &in.pull ? "ingest.pull" : "ingest.router",
                               "'" + e + "' is not a tcp://, ipc:// or inproc:// endpoint");
        }
    }
    if (in.pull.empty() && in.router.empty())
        return r.error("ingest", "no endpoint: set ingest.pull and/or ingest.router");
    SLUICE_RETURN_IF_ERROR(r.integer("ingest.receive_hwm", in.receiveHwm, 1, 1'000'000));
    SLUICE_RETURN_IF_ERROR(r.integer("ingest.send_hwm", in.sendHwm, 1, 1'000'000));
    SLUICE_RETURN_IF_ERROR(r.size("ingest.max_message_size", in.maxMessageBytes, 64, 1ull << 30));
    SLUICE_RETURN_IF_ERROR(r.size("ingest.max_event_size", in.maxEventBytes, 64, 1ull << 30));
    SLUICE_RETURN_IF_ERROR(r.integer("ingest.max_depth", in.maxDepth, 3, 1024));  // root, meta, meta.consent
    SLUICE_RETURN_IF_ERROR(r.duration("ingest.handshake_interval", in.handshakeIvlMs, 0, 3'600'000));
    SLUICE_RETURN_IF_ERROR(r.duration("ingest.heartbeat_interval", in.heartbeatIvlMs, 0, 3'600'000));
    SLUICE_RETURN_IF_ERROR(r.duration("ingest.heartbeat_timeout", in.heartbeatTimeoutMs, 0, 3'600'000));
    SLUICE_RETURN_IF_ERROR(r.integer("ingest.dedupe_window", in.dedupeWindow, 64, 1LL << 26));
    // In whole 64-bit words, as the dedupe index keeps it: maintenance keeps the marks of exactly
    // the sequence numbers the index remembers after a restart.
    in.dedupeWindow = (in.dedupeWindow + 63) / 64 * 64;
    SLUICE_RETURN_IF_ERROR(r.duration("ingest.dedupe_retention", in.dedupeRetentionMs, 60'000, 3650LL * 86'400'000));
    if (in.maxEventBytes > in.maxMessageBytes)
        return r.error("ingest.max_event_size", "is larger than ingest.max_message_size");
    in.curveSecretKeyFile = absoluteFrom(c.stateDir, r.text("ingest.curve_secret_key_file", ""));
    in.curveClientsFile = absoluteFrom(fileDir, r.text("ingest.curve_clients_file", ""));
    if (in.curveSecretKeyFile.empty() != in.curveClientsFile.empty())
        return r.error(in.curveSecretKeyFile.empty() ? "ingest.curve_clients_file" : "ingest.curve_secret_key_file",
                       "CURVE needs both ingest.curve_secret_key_file and ingest.curve_clients_file");
    if (!in.curveClientsFile.empty()) {
        auto clients = readCurveClients(in.curveClientsFile);
        if (!clients)
            return r.error("ingest.curve_clients_file", clients.status().message());
        in.curveClients = std::move(*clients);
    }

    BatchConfig& b = c.batch;
    SLUICE_RETURN_IF_ERROR(r.integer("batch.max_events", b.maxEvents, 1, 10'000'000));
    SLUICE_RETURN_IF_ERROR(r.size("batch.max_bytes", b.maxBytes, 1024, 1ull << 30));
    SLUICE_RETURN_IF_ERROR(r.duration("batch.max_delay", b.maxDelayMs, 1, 60'000));
    SLUICE_RETURN_IF_ERROR(r.yesNo("batch.close_when_idle", b.closeWhenIdle));

    StoreConfig& s = c.store;
    s.database = absoluteFrom(c.stateDir, r.text("store.database", "sluice.db"));
    SLUICE_RETURN_IF_ERROR(r.size("store.dead_letter_input", s.deadLetterInputBytes, 0, 1 << 20));
    SLUICE_RETURN_IF_ERROR(r.duration("store.dead_letter_retention", s.deadLetterRetentionMs, 60'000, 3650LL * 86'400'000));
    SLUICE_RETURN_IF_ERROR(r.size("store.cache_size", s.cacheBytes, 1 << 20, 1ull << 34));

    PrivacyConfig& p = c.privacy;
    p.masterKeyFile = absoluteFrom(c.stateDir, r.text("privacy.master_key_file", ""));
    p.masterKeyCredential = r.text("privacy.master_key_credential", "master.key");
    if (p.masterKeyCredential.find('/') != std::string::npos)
        return r.error("privacy.master_key_credential", "is a credential name, not a path");
    SLUICE_RETURN_IF_ERROR(r.duration("privacy.key_lifetime", p.keyLifetimeMs, 1000, 3650LL * 86'400'000));
    SLUICE_RETURN_IF_ERROR(r.integer("privacy.key_cache", p.keyCacheEntries, 1024, 100'000'000));

    PipelineConfig& pl = c.pipeline;
    pl.contractsDir = absoluteFrom(fileDir, r.text("pipeline.contracts", ""));
    pl.pipelinesDir = absoluteFrom(fileDir, r.text("pipeline.pipelines", ""));
    pl.exportersDir = absoluteFrom(fileDir, r.text("pipeline.exporters", ""));
    pl.stateDir = c.stateDir;
    if (pl.contractsDir.empty())
        return r.error("pipeline.contracts", "is required: a directory of contract files, or builtin:");
    SLUICE_RETURN_IF_ERROR(r.duration("pipeline.max_future", pl.maxFutureMs, 0, 365LL * 86'400'000));
    SLUICE_RETURN_IF_ERROR(
        r.duration("pipeline.session_snapshot_interval", pl.sessionSnapshotIntervalMs, 0, 3'600'000));

    c.metricsListen = r.text("metrics.listen", "");
    c.testing.stallWriterFile = absoluteFrom(c.stateDir, r.text("testing.stall_writer_file", ""));
    c.testing.failWritesFile = absoluteFrom(c.stateDir, r.text("testing.fail_writes_file", ""));
    SLUICE_RETURN_IF_ERROR(r.integer("testing.export_piece_rows", c.testing.exportPieceRows, 1, 1'000'000));
    return Status::ok();
}

}  // namespace

Result<Config> load(int argc, const char* const* argv, LoadError* error)
{
    auto fail = [&](Status status, bool usage) -> Result<Config> {
        if (error) {
            error->status = status;
            error->usage = usage;
        }
        return status;
    };

    po::options_description command = commandOptions();
    po::options_description file = fileOptions();
    po::options_description all;
    all.add(command).add(file);

    Config c;
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).run(), vm);
    } catch (const po::error& e) {
        return fail(Status::invalid(e.what()), true);
    }
    {
        std::ostringstream help;
        help << "usage: sluiced [--config FILE] [--check-config] [--demo] [--section.key=value ...]\n\n"
             << command << "\n"
             << file;
        c.helpText = help.str();
    }
    c.showHelp = vm.count("help") > 0;
    c.showVersion = vm.count("version") > 0;
    c.checkOnly = vm.count("check-config") > 0;
    c.demo = vm.count("demo") > 0;
    if (c.showHelp || c.showVersion)
        return c;

    std::string origin = "embedded configuration";
    fs::path fileDir = fs::current_path();
    try {
        if (vm.count("config")) {
            c.configFile = fs::absolute(vm["config"].as<std::string>()).lexically_normal().string();
            std::ifstream in(c.configFile);
            if (!in)
                return fail(Status::invalid(c.configFile + ": cannot open the configuration file"), false);
            origin = c.configFile;
            fileDir = fs::path(c.configFile).parent_path();
            po::store(po::parse_config_file(in, file, false), vm);
        } else {
            std::istringstream in(kEmbeddedConfig);
            po::store(po::parse_config_file(in, file, false), vm);
        }
    } catch (const po::error& e) {
        return fail(Status::invalid(origin + ": " + e.what()), false);
    }

    Status filled = fill(vm, origin, fileDir, c);
    if (!filled)
        return fail(filled, false);
    auto pipeline = loadPipeline(c.pipeline);
    if (!pipeline)
        return fail(pipeline.status(), false);
    for (const ContractSpec& contract : (*pipeline)->contracts) {
        if (contract.retentionDays > 0 && int64_t{contract.retentionDays} * 86'400'000 <= c.privacy.keyLifetimeMs)
            return fail(Status::invalid(contract.path + ": retention_days (" + std::to_string(contract.retentionDays) +
                                        ") must be longer than privacy.key_lifetime: a key would be shredded "
                                        "while it still encrypts new events"),
                        false);
    }
    c.pipelineSpec = std::move(*pipeline);
    return c;
}

Result<Config> loadForTools(const std::string& configFile, const std::string& stateDir,
                            const std::vector<std::string>& overrides, LoadError* error)
{
    std::vector<std::string> args = {"sluiced"};
    if (!configFile.empty()) {
        args.push_back("--config");
        args.push_back(configFile);
    }
    if (!stateDir.empty()) {
        args.push_back("--state-dir");
        args.push_back(stateDir);
    }
    args.insert(args.end(), overrides.begin(), overrides.end());
    std::vector<const char*> argv;
    for (const std::string& a : args)
        argv.push_back(a.c_str());
    return load(static_cast<int>(argv.size()), argv.data(), error);
}

}  // namespace sluice::config
