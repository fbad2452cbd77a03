// The daemon's configuration: the INI file (Boost.Program_options; command-line flags override
// the file) plus the contract and pipeline JSON files it points to, turned into ONE immutable
// Config value. Loading checks everything it can without starting the daemon: that is what
// `sluiced --check-config` runs. Errors name the file, the option or field, and the problem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/spec.h"
#include "core/status.h"

namespace sluice::config {

struct IngestConfig {
    std::vector<std::string> pull;    // fire-and-forget endpoints (PULL)
    std::vector<std::string> router;  // acknowledged endpoints (ROUTER)
    int receiveHwm = 32;              // messages queued per peer before ZeroMQ pushes back
    int sendHwm = 1000;               // acknowledgements queued per peer
    uint64_t maxMessageBytes = 1024 * 1024;
    uint64_t maxEventBytes = 64 * 1024;
    uint32_t maxDepth = 16;
    int64_t handshakeIvlMs = 30'000;
    int64_t heartbeatIvlMs = 10'000;
    int64_t heartbeatTimeoutMs = 30'000;
    uint64_t dedupeWindow = 65536;    // sequence numbers remembered per producer
    int64_t dedupeRetentionMs = 7LL * 86'400'000;  // producers silent this long are forgotten
    // CURVE: on when curveSecretKeyFile is set (absolute after load). The clients are the
    // 32-byte public keys of the producers allowed to connect, read from curve_clients_file.
    std::string curveSecretKeyFile;
    std::string curveClientsFile;
    std::vector<std::string> curveClients;
};

struct BatchConfig {
    uint64_t maxEvents = 10'000;
    uint64_t maxBytes = 8 * 1024 * 1024;
    int64_t maxDelayMs = 200;
    bool closeWhenIdle = false;
};

struct StoreConfig {
    std::string database;             // absolute after load
    uint64_t deadLetterInputBytes = 4096;
    int64_t deadLetterRetentionMs = 7LL * 86'400'000;
    uint64_t cacheBytes = 4 * 1024 * 1024;
};

struct PrivacyConfig {
    std::string masterKeyFile;        // absolute after load; "" when only the credential is used
    std::string masterKeyCredential;  // a name under $CREDENTIALS_DIRECTORY
    int64_t keyLifetimeMs = 86'400'000;
    uint64_t keyCacheEntries = 200'000;
};

struct PipelineConfig {
    std::string contractsDir;         // absolute, or "builtin:"
    std::string pipelinesDir;         // absolute, or "builtin:", or ""
    std::string exportersDir;         // absolute, or "" (no exporters)
    std::string stateDir;             // relative exporter directories are resolved against it
    int64_t maxFutureMs = 5 * 60'000;
    // Session windows' open sessions are written (a snapshot) at most this often; 0: every batch.
    int64_t sessionSnapshotIntervalMs = 30'000;
};

struct TestingConfig {
    // Fault injection for the test suite. While the file exists the writer thread stalls before
    // committing (watchdog test) / every SQLite write fails with an I/O error (fault test).
    std::string stallWriterFile;
    std::string failWritesFile;
    // Exporters read a batch's events and derived rows this many rowids at a time (the test
    // suite's batches are small: a small value makes them come in pieces too).
    int exportPieceRows = 2000;
};

struct Config {
    std::string configFile;           // "" when the embedded default is used
    std::string stateDir;             // absolute
    int workers = 2;
    // The exporter threads' nice value: under CPU contention ingest and commits come first, and
    // the exporters use what is left (their lag grows instead of the pipeline slowing).
    int exporterNice = 0;
    // While ingest is held back by a full pipeline, each exporter works at most this percent of
    // the time and sleeps the rest (export/pipeline_pressure.h); 100: never.
    int exporterBusyPercent = 5;
    std::string logLevel = "info";
    std::string metricsListen;        // "" disables the endpoint
    IngestConfig ingest;
    BatchConfig batch;
    StoreConfig store;
    PrivacyConfig privacy;
    PipelineConfig pipeline;
    TestingConfig testing;
    PipelinePtr pipelineSpec;

    // What the daemon was asked to do, besides running.
    bool checkOnly = false;
    bool demo = false;
    bool showHelp = false;
    bool showVersion = false;
    std::string helpText;
};

// The configuration used when no --config is given: loopback endpoints, a state directory
// ./sluice-data and the built-in acme/checkout/1.0.0 contract and pipeline.
extern const char* const kEmbeddedConfig;

// Parses the command line and the config file it names (or the embedded one). Relative paths
// in the file are resolved against the file's directory; state paths against state_dir.
// Usage errors and config errors both come back as a Status; `usage` tells them apart.
struct LoadError {
    Status status;
    bool usage = false;
};
Result<Config> load(int argc, const char* const* argv, LoadError* error = nullptr);

// For tools (sluicectl): the configuration sluiced would run with, from `configFile` ("" = the
// embedded one), with an optional state directory override and sluiced's setting overrides
// ("--section.key=value", as its command line takes them).
Result<Config> loadForTools(const std::string& configFile, const std::string& stateDir = "",
                            const std::vector<std::string>& overrides = {}, LoadError* error = nullptr);

// Reads and checks the contract and pipeline files only (what SIGHUP re-reads).
Result<PipelinePtr> loadPipeline(const PipelineConfig& config);

}  // namespace sluice::config
