// The INI file and the command line: every key, the errors (naming the file and the key), the
// command line overriding the file, relative paths, the embedded configuration.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/builtin.h"
#include "config/config.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::config;
using sluice::testing::TempDir;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace fs = std::filesystem;

namespace {

Result<Config> run(const std::vector<std::string>& args, LoadError* error = nullptr)
{
    std::vector<const char*> argv = {"sluiced"};
    for (const std::string& a : args)
        argv.push_back(a.c_str());
    return load(static_cast<int>(argv.size()), argv.data(), error);
}

// A config file with the given body after a minimal valid base (an endpoint and contracts).
std::string writeConfig(const TempDir& dir, const std::string& body, bool base = true,
                        const std::string& name = "sluiced.conf")
{
    std::string text;
    if (base)
        text = "[service]\nstate_dir = " + dir.file("state") + "\n[pipeline]\ncontracts = builtin:\n";
    return dir.write(name, text + body);
}

// Runs with a config file and returns the error message (the test fails if loading succeeds).
std::string errorOf(const TempDir& dir, const std::string& body, bool base = true,
                    const std::vector<std::string>& extra = {})
{
    const std::string path = writeConfig(dir, body, base);
    std::vector<std::string> args = {"--config", path};
    args.insert(args.end(), extra.begin(), extra.end());
    LoadError e;
    auto c = run(args, &e);
    REQUIRE_FALSE(c.isOk());
    CHECK_FALSE(e.usage);
    CHECK(e.status.message() == c.status().message());
    CHECK(c.status().code() == StatusCode::kInvalidArgument);
    return c.status().message();
}

// Sets an environment variable for the scope, restoring the old value after.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name)
    {
        if (const char* old = std::getenv(name))
            old_ = old;
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~ScopedEnv()
    {
        if (old_)
            ::setenv(name_, old_->c_str(), 1);
        else
            ::unsetenv(name_);
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

class ScopedCwd {
public:
    explicit ScopedCwd(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
    ~ScopedCwd() { fs::current_path(old_); }

private:
    fs::path old_;
};

const char* kContract = R"({"ref": "t/c/1.0.0", "key_field": "k",
  "fields": {"k": {"type": "string", "required": true}, "n": {"type": "integer"}}})";

}  // namespace

TEST_CASE("every INI key is read into the Config", "[config][ini]")
{
    TempDir dir;
    dir.write("contracts/c.json", kContract);
    dir.write("pipelines/p.json", R"({"contract": "t/c/1.0.0"})");
    const std::string path = dir.write("etc/sluiced.conf", R"(
[service]
state_dir = /var/tmp/sluice-state
workers = 3

[log]
level = debug

[ingest]
pull = tcp://127.0.0.1:7400
pull = ipc:///tmp/sluice-pull
router = tcp://127.0.0.1:7401
receive_hwm = 10
send_hwm = 20
max_message_size = 2M
max_event_size = 32k
max_depth = 12
handshake_interval = 5s
heartbeat_interval = 0
heartbeat_timeout = 1m
dedupe_window = 4096
dedupe_retention = 2d

[batch]
max_events = 500
max_bytes = 1G
max_delay = 250ms

[store]
database = data/x.db
dead_letter_input = 0
dead_letter_retention = 3h
cache_size = 64MiB

[privacy]
master_key_file = /etc/sluice/master.key
master_key_credential = mk
key_lifetime = 12h
key_cache = 2048

[pipeline]
contracts = ../contracts
pipelines = ../pipelines
max_future = 90s

[metrics]
listen = 127.0.0.1:9999

[testing]
stall_writer_file = stall
fail_writes_file = /tmp/fail
)");
    auto c = run({"--config", path});
    INFO((c.isOk() ? "" : c.status().message()));
    REQUIRE(c.isOk());
    CHECK(c->configFile == path);
    CHECK(c->stateDir == "/var/tmp/sluice-state");
    CHECK(c->workers == 3);
    CHECK(c->logLevel == "debug");
    CHECK(c->ingest.pull == std::vector<std::string>{"tcp://127.0.0.1:7400", "ipc:///tmp/sluice-pull"});
    CHECK(c->ingest.router == std::vector<std::string>{"tcp://127.0.0.1:7401"});
    CHECK(c->ingest.receiveHwm == 10);
    CHECK(c->ingest.sendHwm == 20);
    CHECK(c->ingest.maxMessageBytes == 2u * 1024 * 1024);
    CHECK(c->ingest.maxEventBytes == 32u * 1024);
    CHECK(c->ingest.maxDepth == 12);
    CHECK(c->ingest.handshakeIvlMs == 5000);
    CHECK(c->ingest.heartbeatIvlMs == 0);
    CHECK(c->ingest.heartbeatTimeoutMs == 60'000);
    CHECK(c->ingest.dedupeWindow == 4096);
    CHECK(c->ingest.dedupeRetentionMs == 2 * 86'400'000LL);
    CHECK(c->batch.maxEvents == 500);
    CHECK(c->batch.maxBytes == 1024ull * 1024 * 1024);
    CHECK(c->batch.maxDelayMs == 250);
    CHECK(c->store.database == "/var/tmp/sluice-state/data/x.db");
    CHECK(c->store.deadLetterInputBytes == 0);
    CHECK(c->store.deadLetterRetentionMs == 3 * 3'600'000LL);
    CHECK(c->store.cacheBytes == 64u * 1024 * 1024);
    CHECK(c->privacy.masterKeyFile == "/etc/sluice/master.key");
    CHECK(c->privacy.masterKeyCredential == "mk");
    CHECK(c->privacy.keyLifetimeMs == 12 * 3'600'000LL);
    CHECK(c->privacy.keyCacheEntries == 2048);
    CHECK(c->pipeline.contractsDir == dir.file("contracts"));
    CHECK(c->pipeline.pipelinesDir == dir.file("pipelines"));
    CHECK(c->pipeline.maxFutureMs == 90'000);
    CHECK(c->metricsListen == "127.0.0.1:9999");
    CHECK(c->testing.stallWriterFile == "/var/tmp/sluice-state/stall");
    CHECK(c->testing.failWritesFile == "/tmp/fail");
    REQUIRE(c->pipelineSpec);
    REQUIRE(c->pipelineSpec->contracts.size() == 1);
    CHECK(c->pipelineSpec->contracts[0].ref == "t/c/1.0.0");
    CHECK_FALSE(c->checkOnly);
    CHECK_FALSE(c->demo);
    CHECK_FALSE(c->showHelp);
}

TEST_CASE("keys left out keep their defaults", "[config][ini]")
{
    TempDir dir;
    auto c = run({"--config", writeConfig(dir, "[ingest]\nrouter = tcp://127.0.0.1:0\n")});
    REQUIRE(c.isOk());
    const Config d;
    CHECK(c->logLevel == "info");
    CHECK(c->ingest.pull.empty());
    CHECK(c->ingest.receiveHwm == d.ingest.receiveHwm);
    CHECK(c->ingest.maxMessageBytes == 1024u * 1024);
    CHECK(c->ingest.maxEventBytes == 64u * 1024);
    CHECK(c->ingest.maxDepth == 16);
    CHECK(c->batch.maxEvents == 10'000);
    CHECK(c->batch.maxBytes == 8u * 1024 * 1024);
    CHECK(c->batch.maxDelayMs == 200);
    CHECK(c->store.database == dir.file("state") + "/sluice.db");
    CHECK(c->privacy.masterKeyFile.empty());
    CHECK(c->privacy.masterKeyCredential == "master.key");
    CHECK(c->privacy.keyLifetimeMs == 86'400'000);
    CHECK(c->pipeline.pipelinesDir.empty());
    CHECK(c->pipeline.maxFutureMs == 300'000);
    CHECK(c->metricsListen.empty());
    CHECK(c->testing.stallWriterFile.empty());
    CHECK(c->testing.failWritesFile.empty());
    CHECK(c->workers >= 1);
    CHECK(c->workers <= 8);  // auto: the cores, at most 8
}

TEST_CASE("an unknown key names the file and the key", "[config][ini][errors]")
{
    TempDir dir;
    std::string m = errorOf(dir, "[ingest]\npull = tcp://127.0.0.1:1\ncolour = red\n");
    CHECK_THAT(m, StartsWith(dir.file("sluiced.conf") + ": "));
    CHECK_THAT(m, Contains("ingest.colour"));

    std::string section = errorOf(dir, "[ingest]\npull = tcp://127.0.0.1:1\n[nosuch]\nkey = 1\n");
    CHECK_THAT(section, StartsWith(dir.file("sluiced.conf") + ": "));
    CHECK_THAT(section, Contains("nosuch.key"));
}

TEST_CASE("bad values name the file, the key and the problem", "[config][ini][errors]")
{
    TempDir dir;
    const std::string file = dir.file("sluiced.conf");
    struct Case {
        std::string body;
        std::string expected;  // the whole message after "<file>: "
    };
    const std::string ep = "[ingest]\npull = tcp://127.0.0.1:1\n";
    const std::vector<Case> cases = {
        {ep + "max_message_size = 12X\n",
         "ingest.max_message_size: '12X' is not a size from 64 to 1073741824 (suffixes k, M, G)"},
        {ep + "max_message_size = 2G\n",
         "ingest.max_message_size: '2G' is not a size from 64 to 1073741824 (suffixes k, M, G)"},
        {ep + "max_event_size = 63\n", "ingest.max_event_size: '63' is not a size from 64 to 1073741824 (suffixes k, M, G)"},
        {ep + "max_event_size = -1\n", "ingest.max_event_size: '-1' is not a size from 64 to 1073741824 (suffixes k, M, G)"},
        {ep + "[batch]\nmax_bytes = 1023\n", "batch.max_bytes: '1023' is not a size from 1024 to 1073741824 (suffixes k, M, G)"},
        {ep + "[batch]\nmax_bytes = 8 M\n", "batch.max_bytes: '8 M' is not a size from 1024 to 1073741824 (suffixes k, M, G)"},
        {ep + "[store]\ncache_size = 1k\n", "store.cache_size: '1k' is not a size from 1048576 to 17179869184 (suffixes k, M, G)"},
        {ep + "[batch]\nmax_delay = 5 parsecs\n",
         "batch.max_delay: '5 parsecs' is not a duration from 1ms to 60000ms (suffixes ms, s, m, h, d)"},
        {ep + "[batch]\nmax_delay = 0\n", "batch.max_delay: '0' is not a duration from 1ms to 60000ms (suffixes ms, s, m, h, d)"},
        {ep + "[batch]\nmax_delay = 2m\n", "batch.max_delay: '2m' is not a duration from 1ms to 60000ms (suffixes ms, s, m, h, d)"},
        {ep + "[batch]\nmax_delay = 1.5s\n", "batch.max_delay: '1.5s' is not a duration from 1ms to 60000ms (suffixes ms, s, m, h, d)"},
        {ep + "handshake_interval = 2h\n",
         "ingest.handshake_interval: '2h' is not a duration from 0ms to 3600000ms (suffixes ms, s, m, h, d)"},
        {ep + "dedupe_retention = 59s\n",
         "ingest.dedupe_retention: '59s' is not a duration from 60000ms to 315360000000ms (suffixes ms, s, m, h, d)"},
        {ep + "[store]\ndead_letter_retention = soon\n",
         "store.dead_letter_retention: 'soon' is not a duration from 60000ms to 315360000000ms (suffixes ms, s, m, h, d)"},
        {ep + "[privacy]\nkey_lifetime = 999ms\n",
         "privacy.key_lifetime: '999ms' is not a duration from 1000ms to 315360000000ms (suffixes ms, s, m, h, d)"},
        {ep + "[pipeline]\nmax_future = 366d\n",
         "pipeline.max_future: '366d' is not a duration from 0ms to 31536000000ms (suffixes ms, s, m, h, d)"},
        {ep + "[service]\nworkers = two\n", "service.workers: 'two' is not an integer from 1 to 64"},
        {ep + "[service]\nworkers = 0\n", "service.workers: '0' is not an integer from 1 to 64"},
        {ep + "[service]\nworkers = 65\n", "service.workers: '65' is not an integer from 1 to 64"},
        {ep + "[service]\nworkers = 4x\n", "service.workers: '4x' is not an integer from 1 to 64"},
        {ep + "receive_hwm = 0\n", "ingest.receive_hwm: '0' is not an integer from 1 to 1000000"},
        {ep + "send_hwm = 99999999999999999999\n", "ingest.send_hwm: '99999999999999999999' is not an integer from 1 to 1000000"},
        {ep + "max_depth = 1025\n", "ingest.max_depth: '1025' is not an integer from 3 to 1024"},
        {ep + "max_depth = 2\n", "ingest.max_depth: '2' is not an integer from 3 to 1024"},
        {ep + "dedupe_window = 63\n", "ingest.dedupe_window: '63' is not an integer from 64 to 67108864"},
        {ep + "[batch]\nmax_events = 1.5\n", "batch.max_events: '1.5' is not an integer from 1 to 10000000"},
        {ep + "[batch]\nmax_events = \n", "batch.max_events: '' is not an integer from 1 to 10000000"},
        {ep + "[privacy]\nkey_cache = 1023\n", "privacy.key_cache: '1023' is not an integer from 1024 to 100000000"},
        {ep + "[log]\nlevel = verbose\n", "log.level: 'verbose' is not one of error, warning, notice, info, debug"},
        {"[ingest]\npull = udp://127.0.0.1:1\n", "ingest.pull: 'udp://127.0.0.1:1' is not a tcp://, ipc:// or inproc:// endpoint"},
        {"[ingest]\nrouter = 127.0.0.1:1\n", "ingest.router: '127.0.0.1:1' is not a tcp://, ipc:// or inproc:// endpoint"},
        {"[ingest]\nreceive_hwm = 5\n", "ingest: no endpoint: set ingest.pull and/or ingest.router"},
        {ep + "max_message_size = 1k\nmax_event_size = 2k\n", "ingest.max_event_size: is larger than ingest.max_message_size"},
        {ep + "[privacy]\nmaster_key_credential = a/b\n", "privacy.master_key_credential: is a credential name, not a path"},
    };
    for (const Case& c : cases) {
        INFO("config:\n" << c.body);
        CHECK(errorOf(dir, c.body) == file + ": " + c.expected);
    }

    // The contracts directory is required (not in the base here).
    std::string noContracts = errorOf(dir, "[service]\nstate_dir = /tmp\n" + ep, false);
    CHECK(noContracts == file + ": pipeline.contracts: is required: a directory of contract files, or builtin:");
}

TEST_CASE("sizes and durations accept their suffixes", "[config][ini]")
{
    TempDir dir;
    struct Case {
        std::string value;
        uint64_t bytes;
    };
    for (const Case& c : std::vector<Case>{{"1048576", 1048576}, {"1024k", 1048576}, {"1024K", 1048576},
                                           {"1024KiB", 1048576}, {"3M", 3145728}, {"3MiB", 3145728},
                                           {"1G", 1073741824}, {"2048B", 2048}}) {
        auto cfg = run({"--config", writeConfig(dir, "[ingest]\npull = tcp://127.0.0.1:1\n[batch]\nmax_bytes = " +
                                                         c.value + "\n")});
        INFO(c.value);
        REQUIRE(cfg.isOk());
        CHECK(cfg->batch.maxBytes == c.bytes);
    }
    struct Dur {
        std::string value;
        int64_t ms;
    };
    for (const Dur& d : std::vector<Dur>{{"250", 250}, {"250ms", 250}, {"2s", 2000}, {"1m", 60'000},
                                         {"1min", 60'000}, {"1h", 3'600'000}, {"1d", 86'400'000}}) {
        auto cfg = run({"--config", writeConfig(dir, "[ingest]\npull = tcp://127.0.0.1:1\n[pipeline]\nmax_future = " +
                                                         d.value + "\n")});
        INFO(d.value);
        REQUIRE(cfg.isOk());
        CHECK(cfg->pipeline.maxFutureMs == d.ms);
    }
}

TEST_CASE("the command line overrides the file", "[config][ini][cli]")
{
    TempDir dir;
    const std::string path = writeConfig(dir,
                                         "[ingest]\npull = tcp://127.0.0.1:1\npull = tcp://127.0.0.1:2\n"
                                         "[batch]\nmax_events = 100\nmax_delay = 1s\n[log]\nlevel = debug\n");
    auto c = run({"--config", path, "--batch.max_events=7", "--ingest.pull", "ipc:///tmp/x", "--log-level", "error",
                  "--check-config"});
    INFO((c.isOk() ? "" : c.status().message()));
    REQUIRE(c.isOk());
    CHECK(c->batch.maxEvents == 7);
    CHECK(c->batch.maxDelayMs == 1000);  // not overridden: the file's value
    CHECK(c->ingest.pull == std::vector<std::string>{"ipc:///tmp/x"});
    CHECK(c->logLevel == "error");
    CHECK(c->checkOnly);

    // A bad value on the command line is reported like one in the file.
    LoadError e;
    auto bad = run({"--config", path, "--batch.max_events=lots"}, &e);
    REQUIRE_FALSE(bad.isOk());
    CHECK_THAT(bad.status().message(), Contains("batch.max_events: 'lots' is not an integer"));

    // --log.level on the command line overrides the file as well.
    auto both = run({"--config", path, "--log.level=notice"});
    REQUIRE(both.isOk());
    CHECK(both->logLevel == "notice");
}

TEST_CASE("usage errors are told apart from config errors", "[config][cli][errors]")
{
    LoadError e;
    auto c = run({"--no-such-flag"}, &e);
    REQUIRE_FALSE(c.isOk());
    CHECK(e.usage);
    CHECK_THAT(c.status().message(), Contains("no-such-flag"));

    LoadError missing;
    auto m = run({"--config", "/nonexistent/sluiced.conf"}, &missing);
    REQUIRE_FALSE(m.isOk());
    CHECK_FALSE(missing.usage);
    CHECK(m.status().message() == "/nonexistent/sluiced.conf: cannot open the configuration file");

    LoadError value;
    auto v = run({"--config"}, &value);
    REQUIRE_FALSE(v.isOk());
    CHECK(value.usage);
}

TEST_CASE("--help and --version return before reading any file", "[config][cli]")
{
    auto h = run({"--help", "--config", "/nonexistent"});
    REQUIRE(h.isOk());
    CHECK(h->showHelp);
    CHECK_THAT(h->helpText, Contains("--check-config"));
    CHECK_THAT(h->helpText, Contains("batch.max_delay"));
    CHECK_THAT(h->helpText, Contains("ingest.router"));
    auto v = run({"--version"});
    REQUIRE(v.isOk());
    CHECK(v->showVersion);
    auto d = run({"--demo", "--help"});
    REQUIRE(d.isOk());
    CHECK(d->demo);
}

TEST_CASE("relative paths: the file's directory for the config, state_dir for state", "[config][ini][paths]")
{
    TempDir dir;
    dir.write("conf/contracts/c.json", kContract);
    dir.write("conf/pipes/p.json", R"({"contract": "t/c/1.0.0"})");
    const std::string path = dir.write("conf/sluiced.conf",
                                       "[service]\nstate_dir = ../state\n"
                                       "[ingest]\npull = tcp://127.0.0.1:1\n"
                                       "[store]\ndatabase = db/s.db\n"
                                       "[privacy]\nmaster_key_file = keys/master.key\n"
                                       "[pipeline]\ncontracts = contracts\npipelines = ./pipes/\n"
                                       "[testing]\nfail_writes_file = fail\n");
    auto c = run({"--config", path});
    INFO((c.isOk() ? "" : c.status().message()));
    REQUIRE(c.isOk());
    CHECK(c->stateDir == dir.file("state"));
    CHECK(c->store.database == dir.file("state/db/s.db"));
    CHECK(c->privacy.masterKeyFile == dir.file("state/keys/master.key"));
    CHECK(c->pipeline.contractsDir == dir.file("conf/contracts"));
    CHECK(c->pipeline.pipelinesDir == dir.file("conf/pipes/"));
    CHECK(c->testing.failWritesFile == dir.file("state/fail"));

    // A relative --config is made absolute against the working directory.
    {
        ScopedCwd cwd(dir.path() / "conf");
        auto rel = run({"--config", "sluiced.conf"});
        REQUIRE(rel.isOk());
        CHECK(rel->configFile == path);
        CHECK(rel->stateDir == dir.file("state"));
    }

    // --state-dir on the command line is relative to the working directory, not to the file.
    {
        ScopedCwd cwd(dir.path());
        auto s = run({"--config", path, "--state-dir", "elsewhere"});
        REQUIRE(s.isOk());
        CHECK(s->stateDir == dir.file("elsewhere"));
        CHECK(s->store.database == dir.file("elsewhere/db/s.db"));
    }

    // Absolute paths are kept as they are.
    const std::string abs = dir.write("conf/abs.conf", "[service]\nstate_dir = /srv/s\n[ingest]\npull = tcp://127.0.0.1:1\n"
                                                       "[store]\ndatabase = /data/x.db\n[pipeline]\ncontracts = " +
                                                           dir.file("conf/contracts") + "\n");
    auto a = run({"--config", abs});
    REQUIRE(a.isOk());
    CHECK(a->stateDir == "/srv/s");
    CHECK(a->store.database == "/data/x.db");
}

TEST_CASE("state_dir falls back to $STATE_DIRECTORY, then /var/lib/sluice", "[config][ini][paths]")
{
    TempDir dir;
    const std::string path = dir.write("sluiced.conf", "[ingest]\npull = tcp://127.0.0.1:1\n[pipeline]\ncontracts = builtin:\n");
    {
        ScopedEnv env("STATE_DIRECTORY", "/run/state-from-systemd");
        auto c = run({"--config", path});
        REQUIRE(c.isOk());
        CHECK(c->stateDir == "/run/state-from-systemd");
        CHECK(c->store.database == "/run/state-from-systemd/sluice.db");
    }
    {
        ScopedEnv env("STATE_DIRECTORY", nullptr);
        auto c = run({"--config", path});
        REQUIRE(c.isOk());
        CHECK(c->stateDir == "/var/lib/sluice");
    }
    {
        // The file's own state_dir wins over the environment.
        ScopedEnv env("STATE_DIRECTORY", "/run/state-from-systemd");
        auto c = run({"--config", writeConfig(dir, "[ingest]\npull = tcp://127.0.0.1:1\n")});
        REQUIRE(c.isOk());
        CHECK(c->stateDir == dir.file("state"));
    }
}

TEST_CASE("builtin: contracts and pipelines, and the embedded configuration", "[config][ini][builtin]")
{
    TempDir dir;
    auto c = run({"--config", writeConfig(dir, "[ingest]\npull = tcp://127.0.0.1:1\n[pipeline]\npipelines = builtin:\n")});
    INFO((c.isOk() ? "" : c.status().message()));
    REQUIRE(c.isOk());
    CHECK(c->pipeline.contractsDir == "builtin:");
    CHECK(c->pipeline.pipelinesDir == "builtin:");
    const PipelineSpec& p = *c->pipelineSpec;
    REQUIRE(p.contracts.size() == 1);
    const ContractSpec& acme = p.contracts[0];
    CHECK(acme.ref == "acme/checkout/1.0.0");
    CHECK(acme.path == "builtin:acme-checkout.json");
    CHECK(acme.keyField == "session_id");
    CHECK(acme.subjectField == "customer_id");
    CHECK(acme.retentionDays == 30);
    CHECK(acme.fields.size() == 8);
    REQUIRE(p.outputs.size() == 1);
    CHECK(p.outputs[0].name == "analytics");
    CHECK(p.outputs[0].purposes == std::vector<int>{1, 2});
    CHECK(p.outputs[0].maskedFields == std::vector<std::string>{"email"});
    REQUIRE(p.aggregations.size() == 1);
    CHECK(p.aggregations[0].name == "revenue_by_country");
    CHECK(p.aggregations[0].windowMs == 60'000);
    CHECK(p.aggregations[0].allowedLatenessMs == 30'000);

    // No --config: the embedded configuration, with paths relative to the working directory.
    ScopedEnv env("STATE_DIRECTORY", nullptr);
    ScopedCwd cwd(dir.path());
    auto e = run({});
    INFO((e.isOk() ? "" : e.status().message()));
    REQUIRE(e.isOk());
    CHECK(e->configFile.empty());
    CHECK(e->stateDir == dir.file("sluice-data"));
    CHECK(e->store.database == dir.file("sluice-data/sluice.db"));
    CHECK(e->privacy.masterKeyFile == dir.file("sluice-data/master.key"));
    CHECK(e->ingest.pull == std::vector<std::string>{"tcp://127.0.0.1:7400"});
    CHECK(e->ingest.router == std::vector<std::string>{"tcp://127.0.0.1:7401"});
    CHECK(e->metricsListen == "127.0.0.1:9464");
    CHECK(e->workers == 2);
    CHECK(e->pipelineSpec->contracts.size() == 1);

    // The command line overrides the embedded configuration too.
    auto o = run({"--batch.max_delay=20ms", "--state-dir", "/tmp/other"});
    REQUIRE(o.isOk());
    CHECK(o->batch.maxDelayMs == 20);
    CHECK(o->stateDir == "/tmp/other");
}

TEST_CASE("a bad contract fails the whole load with its message", "[config][ini]")
{
    TempDir dir;
    dir.write("contracts/bad.json", "{\"ref\": 1}");
    const std::string path = dir.write("sluiced.conf", "[service]\nstate_dir = /tmp\n[ingest]\npull = tcp://127.0.0.1:1\n"
                                                       "[pipeline]\ncontracts = contracts\n");
    LoadError e;
    auto c = run({"--config", path}, &e);
    REQUIRE_FALSE(c.isOk());
    CHECK_FALSE(e.usage);
    CHECK_THAT(c.status().message(), StartsWith(dir.file("contracts/bad.json") + ": ref: "));
}

TEST_CASE("loadForTools: the daemon's configuration with a state directory override", "[config][ini]")
{
    TempDir dir;
    const std::string path = writeConfig(dir, "[ingest]\npull = tcp://127.0.0.1:1\n");
    auto c = loadForTools(path);
    REQUIRE(c.isOk());
    CHECK(c->stateDir == dir.file("state"));
    auto o = loadForTools(path, "/tmp/tool-state");
    REQUIRE(o.isOk());
    CHECK(o->stateDir == "/tmp/tool-state");
    CHECK(o->store.database == "/tmp/tool-state/sluice.db");
    auto bad = loadForTools(dir.file("missing.conf"));
    REQUIRE_FALSE(bad.isOk());
    CHECK_THAT(bad.status().message(), Contains("missing.conf: cannot open"));
}

TEST_CASE("ingest.dedupe_window is kept in whole 64-bit words, as the dedupe index keeps it", "[config]")
{
    TempDir dir("sluice-config");
    for (const auto& [text, window] : std::vector<std::pair<std::string, uint64_t>>{
             {"64", 64}, {"65", 128}, {"100", 128}, {"65536", 65536}}) {
        const std::string path =
            writeConfig(dir, "[ingest]\nrouter = tcp://127.0.0.1:7401\ndedupe_window = " + text + "\n");
        auto c = run({"--config", path});
        REQUIRE(c.isOk());
        CHECK(c->ingest.dedupeWindow == window);
    }
}
