// Integration-test harness: a real sluiced process in a temporary directory, started from the
// build tree (its path comes from $SLUICED, set by meson), with helpers to read its database.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace sluice::testing {

struct DaemonOptions {
    // Endpoints; tcp://127.0.0.1:0 picks a free port at every start. Use ipc:// (a path in the
    // temp dir) when producers must reach the same endpoint across restarts.
    std::string pull = "tcp://127.0.0.1:0";
    std::string router = "tcp://127.0.0.1:0";
    std::string metrics = "127.0.0.1:0";
    std::string contracts = "builtin:";
    std::string pipelines = "builtin:";
    int workers = 2;
    bool masterKey = true;                    // write a master key file before the first start
    std::string extraConfig;                  // more INI lines, appended (e.g. "[batch]\nmax_delay = 50ms\n")
    std::map<std::string, std::string> env;   // extra environment variables
    std::vector<std::string> args;            // extra command-line arguments

    // Acknowledged ingest only, on an ipc:// endpoint in `dir` that survives restarts; no PULL
    // socket, no metrics listener. `extraConfig` as above.
    static DaemonOptions acknowledgedOnly(const TempDir& dir, std::string extraConfig = {})
    {
        DaemonOptions o;
        o.pull = "";
        o.router = "ipc://" + dir.file("router.sock");
        o.metrics = "";
        o.extraConfig = std::move(extraConfig);
        return o;
    }
};

class Daemon {
public:
    Daemon(const TempDir& dir, DaemonOptions options = {});
    ~Daemon();  // SIGKILLs a daemon still running
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Starts sluiced and waits until its log says it is ready. Returns false (see log()) when it
    // exits or does not get ready within `timeout`.
    bool start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // Runs sluiced and waits for it to exit (for refusals: missing key, bad config). Exit code.
    int runToExit(std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // Sends `signal` and waits for exit; returns the exit code (128 + signal when killed).
    int stop(int signal = 15, std::chrono::milliseconds timeout = std::chrono::seconds(30));
    void kill9();
    bool running();
    pid_t pid() const { return pid_; }

    const std::string& configPath() const { return configPath_; }
    const std::string& stateDir() const { return stateDir_; }
    std::string database() const { return stateDir_ + "/sluice.db"; }
    // From the ready line of the latest start.
    const std::string& pullEndpoint() const { return pullEndpoint_; }
    const std::string& routerEndpoint() const { return routerEndpoint_; }
    const std::string& metricsAddress() const { return metricsAddress_; }  // host:port
    // Everything the daemon wrote to stderr, all starts together.
    std::string log() const;
    void writeConfig();
    DaemonOptions& options() { return options_; }

private:
    bool spawn();
    int waitExit(std::chrono::milliseconds timeout);

    const TempDir& dir_;
    DaemonOptions options_;
    std::string configPath_;
    std::string stateDir_;
    std::string logPath_;
    pid_t pid_ = -1;
    size_t logOffset_ = 0;  // where the current start's log begins
    std::string pullEndpoint_;
    std::string routerEndpoint_;
    std::string metricsAddress_;
};

// Small SQL helpers on a read-only connection.
int64_t queryInt(const std::string& database, const std::string& sql);
std::vector<std::vector<std::string>> queryRows(const std::string& database, const std::string& sql);

// A plain HTTP GET on 127.0.0.1; returns the body ("" on failure).
std::string httpGet(const std::string& hostPort, const std::string& path);

// The whole content of a file as bytes ("" when it does not exist).
std::string readFile(const std::string& path);

}  // namespace sluice::testing
