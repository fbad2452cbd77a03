#include "service/daemon.h"

#include <malloc.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>

#include "core/clock.h"
#include "core/exit_codes.h"
#include "core/log.h"
#include "ingest/receiver.h"
#include "privacy/key_wrap.h"
#include "privacy/master_key.h"
#include "service/commit_listeners.h"
#include "service/daemon_metrics.h"
#include "service/export_metrics.h"
#include "service/demo.h"
#include "service/metrics.h"
#include "service/metrics_server.h"
#include "service/notify.h"
#include "service/processor.h"
#include "service/writer_stage.h"
#include "store/batch_writer.h"
#include "store/fault_vfs.h"
#include "store/schema.h"
#include "store/state.h"
#include "store/wal_sync.h"
#include "transform/db_key_source.h"
#include "transform/pipeline_runtime.h"

namespace sluice::service {
namespace {

using transform::PipelineRuntime;

// A startup step that failed has logged why; this is the exit code it chose.
struct StepFailed {
    int exitCode;
};

Status ensureStateDir(const std::string& dir)
{
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec))
        return Status::ok();
    if (!std::filesystem::create_directories(dir, ec))
        return Status::ioError("cannot create the state directory " + dir + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
    return Status::ok();
}

// A full or failing disk is not a configuration problem.
int storageExit(const Status& s)
{
    return s.code() == StatusCode::kIoError || s.code() == StatusCode::kCorruption ? kExitIoErr : kExitConfig;
}

std::string statusLine(const ProcessorStats& p, const WriterStats& w, double rate, int64_t nowMs)
{
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(0);
    s << rate << " events/s; " << w.events.load() << " committed, ";
    uint64_t rejected = 0;
    for (const auto& r : p.rejected)
        rejected += r.load();
    s << rejected << " rejected, " << p.duplicates.load() << " duplicates; ";
    const int64_t last = w.lastCommitMs.load();
    if (last == 0)
        s << "no batch committed yet";
    else
        s << "last commit " << (nowMs - last) / 1000 << " s ago";
    return s.str();
}

// Everything sluiced holds while it runs. Members are declared in the order they are built;
// run() is the whole life of the daemon as a sequence of named steps, and joins every thread
// before it returns, so that no thread outlives what it uses.
class Daemon {
public:
    explicit Daemon(const config::Config& cfg) : cfg_(cfg), clock_(SystemClock::instance()) {}
    ~Daemon() { notifier_.stopping(); }  // every way out tells systemd

    int run();

private:
    // Startup: each step logs what went wrong and throws StepFailed with the exit code.
    void openState();
    void openDatabase();
    void loadRecoveryState();
    void startPipeline();
    void startExporters();
    void startMetricsEndpoint();
    void announceReady();
    // Running.
    void serve();
    void onSignal(int signo);
    void reload();
    void tick();
    // Stopping.
    void shutdownPipeline();
    void reportDrained(std::chrono::steady_clock::time_point since);
    // Pipeline threads: a fault that stops one of them. First come, first served.
    void fatal(int exitCode, const Status& why);

    [[noreturn]] static void fail(int exitCode) { throw StepFailed{exitCode}; }

    const config::Config& cfg_;
    SystemClock& clock_;
    Notifier notifier_;
    boost::asio::io_context ioc_;
    std::atomic<int> fatalExit_{0};

    privacy::SecretBytes curveSecret_;
    std::optional<privacy::KeyWrapper> wrapper_;
    store::CursorMailbox cursorMailbox_;  // from the exporters to the writer; outlives both
    std::unique_ptr<store::BatchWriter> batchWriter_;
    std::unique_ptr<store::WalSync> walSync_;  // the writer stage's sync thread makes commits durable
    std::shared_ptr<const PipelineRuntime> runtime_;
    uint64_t lastBatch_ = 0;
    std::vector<std::pair<std::string, int64_t>> watermarks_;
    std::optional<ingest::DedupeIndex> dedupe_;
    size_t marks_ = 0;

    BoundedQueue<Batch> batchQueue_{1};
    BoundedQueue<WriteBatch> commitQueue_{1};
    ingest::AckChannel acks_;
    ingest::IngestStats ingestStats_;
    ProcessorStats processorStats_;
    WriterStats writerStats_;
    Registry registry_;
    std::optional<DaemonMetrics> metrics_;
    std::optional<std::chrono::microseconds> watchdogInterval_;
    std::optional<ProgressWatchdog> watchdog_;
    ProgressWatchdog::Stage* ingestProgress_ = nullptr;
    ProgressWatchdog::Stage* processorProgress_ = nullptr;
    ProgressWatchdog::Stage* writerProgress_ = nullptr;

    std::unique_ptr<Processor> processor_;
    std::unique_ptr<WriterStage> writer_;
    std::optional<AckListener> ackListener_;
    std::optional<KeyNoticeListener> keyListener_;
    std::unique_ptr<exports::ExportSet> exporters_;
    std::optional<ExportListener> exportListener_;
    std::optional<ExportMetrics> exportMetrics_;
    std::unique_ptr<ingest::Receiver> receiver_;
    bool pipelineStarted_ = false;
    std::unique_ptr<MetricsServer> metricsServer_;
    std::unique_ptr<Demo> demo_;

    std::optional<boost::asio::signal_set> signals_;
    std::optional<boost::asio::steady_timer> timer_;
    std::chrono::nanoseconds tickEvery_{std::chrono::seconds(1)};
    bool stalledReported_ = false;
    uint64_t lastEvents_ = 0;
    int64_t lastTickMs_ = 0;
};

int Daemon::run()
{
    log::Level level = log::Level::kInfo;
    log::parseLevel(cfg_.logLevel, level);
    log::setLevel(level);
    try {
        openState();
        openDatabase();
        loadRecoveryState();
        startPipeline();
        startMetricsEndpoint();
        announceReady();
    } catch (const StepFailed& f) {
        shutdownPipeline();
        return fatalExit_.load() ? fatalExit_.load() : f.exitCode;
    }
    serve();
    const auto drainStart = std::chrono::steady_clock::now();
    if (demo_)
        demo_->stop();
    shutdownPipeline();
    if (const int code = fatalExit_.load())
        return code;
    reportDrained(drainStart);
    return kExitOk;
}

// The state directory, the master key and the CURVE secret: the secrets come from files or
// systemd credentials only.
void Daemon::openState()
{
    if (Status s = ensureStateDir(cfg_.stateDir); !s) {
        log::error(s.message());
        fail(kExitIoErr);
    }
    auto master = privacy::loadMasterKey(
        {cfg_.privacy.masterKeyFile, cfg_.privacy.masterKeyCredential, cfg_.configFile}, cfg_.demo);
    if (!master) {
        log::error(master.status().message());
        fail(kExitConfig);
    }
    if (!cfg_.ingest.curveSecretKeyFile.empty()) {
        auto secret = privacy::readSecretFile(cfg_.ingest.curveSecretKeyFile, 32);
        if (!secret) {
            log::error("CURVE: ", secret.status().message());
            fail(kExitConfig);
        }
        curveSecret_ = std::move(*secret);
    }
    if (master->created)
        log::warning("DEMO: created a new master key at ", master->source,
                     " (mode 0600). It protects every key in the database: keep it secret, keep a copy.");
    auto wrapper = privacy::KeyWrapper::create(std::move(master->bytes));
    if (!wrapper) {
        log::error(wrapper.status().withContext(master->source).message());
        fail(kExitConfig);
    }
    wrapper_.emplace(std::move(*wrapper));
}

// The database: opened by the one writer, checked after whatever crash came before, matched
// with the master key, and brought to the configuration's tables.
void Daemon::openDatabase()
{
    store::BatchWriter::Options options;
    options.path = cfg_.store.database;
    options.cacheBytes = static_cast<int64_t>(cfg_.store.cacheBytes);
    options.backgroundCheckpoints = true;
    // COMMIT does not wait for the disk: the writer stage's sync thread fsyncs the WAL before
    // anyone hears of a commit (WriterStage::Options::walSync), while the writer goes on.
    options.syncEveryCommit = false;
    options.sketches = transform::sketchFunctions();
    if (!cfg_.testing.failWritesFile.empty()) {
        if (Status s = store::registerFaultVfs(cfg_.testing.failWritesFile); !s) {
            log::error(s.message());
            fail(kExitSoftware);
        }
        options.vfs = store::kFaultVfsName;
        log::warning("testing: database writes fail while ", cfg_.testing.failWritesFile, " exists");
    }
    auto writer = store::BatchWriter::open(options);
    if (!writer) {
        log::error(writer.status().message());
        fail(writer.status().code() == StatusCode::kInvalidArgument ? kExitConfig : kExitIoErr);
    }
    batchWriter_ = std::move(*writer);
    walSync_ = std::make_unique<store::WalSync>(cfg_.store.database);
    // After a crash SQLite has already rolled the WAL forward or back; check before accepting
    // anything that the file is sound.
    if (Status s = store::quickCheck(batchWriter_->db()); !s) {
        log::error(cfg_.store.database, ": ", s.message());
        fail(kExitIoErr);
    }
    if (Status s = transform::checkMasterKey(batchWriter_->db(), *wrapper_); !s) {
        log::error(cfg_.store.database, ": ", s.message());
        fail(s.code() == StatusCode::kPermission ? kExitConfig : kExitIoErr);
    }
    auto runtime = PipelineRuntime::build(cfg_.pipelineSpec, *wrapper_);
    if (!runtime) {
        log::error(runtime.status().message());
        fail(kExitConfig);
    }
    runtime_ = std::move(*runtime);
    if (Status s = batchWriter_->applySchema(*cfg_.pipelineSpec, runtime_->schema->tables, clock_.wallMs()); !s) {
        log::error(cfg_.store.database, ": recording the schema and pipeline: ", s.message());
        fail(storageExit(s));
    }
}

// Where the last run stopped: the next batch id, the contracts' watermarks and the producers'
// sequence marks (what makes resends exactly-once).
void Daemon::loadRecoveryState()
{
    auto lastBatch = batchWriter_->lastBatchId();
    auto watermarks = store::loadWatermarks(batchWriter_->db());
    if (!lastBatch || !watermarks) {
        log::error((!lastBatch ? lastBatch.status() : watermarks.status()).message());
        fail(kExitIoErr);
    }
    lastBatch_ = *lastBatch;
    watermarks_ = std::move(*watermarks);
    dedupe_.emplace(cfg_.ingest.dedupeWindow);
    const int64_t startMs = clock_.wallMs();
    if (Status s = store::forEachMark(batchWriter_->db(),
                                      [&](store::MarkRow&& m) {
                                          dedupe_->load(m.producer, m.seq, startMs);
                                          ++marks_;
                                      });
        !s) {
        log::error(s.message());
        fail(kExitIoErr);
    }
}

// The three pipeline threads, writer first (it must be there to drain whatever the others
// hand on), then the processor, then ingest (its sockets are bound last).
void Daemon::startPipeline()
{
    metrics_.emplace(registry_, ingestStats_, processorStats_, writerStats_, batchQueue_, commitQueue_);
    watchdogInterval_ = notifier_.watchdogInterval();
    const auto stallLimit = watchdogInterval_ ? std::max<std::chrono::nanoseconds>(*watchdogInterval_ / 2,
                                                                                    std::chrono::milliseconds(500))
                                              : std::chrono::nanoseconds(std::chrono::seconds(30));
    watchdog_.emplace(stallLimit);
    ingestProgress_ = &watchdog_->addStage("ingest");
    processorProgress_ = &watchdog_->addStage("processor");
    writerProgress_ = &watchdog_->addStage("writer");

    Processor::Options po;
    po.workers = cfg_.workers;
    po.transform.limits.maxEventBytes = cfg_.ingest.maxEventBytes;
    po.transform.limits.maxDepth = cfg_.ingest.maxDepth;
    po.transform.limits.maxFutureMs = cfg_.pipeline.maxFutureMs;
    po.transform.keyCacheEntries = cfg_.privacy.keyCacheEntries;
    po.transform.deadLetterInputBytes = cfg_.store.deadLetterInputBytes;
    po.transform.sessionSnapshotIntervalMs = cfg_.pipeline.sessionSnapshotIntervalMs;
    po.keyLifetimeMs = cfg_.privacy.keyLifetimeMs;
    po.databasePath = cfg_.store.database;
    processor_ = std::make_unique<Processor>(po, clock_, *wrapper_, batchQueue_, commitQueue_, processorStats_);
    processor_->setHeartbeat([this] { processorProgress_->beat(); });
    processor_->setFatal([this](const Status& s) { fatal(kExitSoftware, s); });

    WriterStage::Options wo;
    wo.stallFile = cfg_.testing.stallWriterFile;
    wo.pipeline = cfg_.pipelineSpec;
    wo.keyLifetimeMs = cfg_.privacy.keyLifetimeMs;
    wo.deadLetterRetentionMs = cfg_.store.deadLetterRetentionMs;
    wo.dedupeWindow = cfg_.ingest.dedupeWindow;
    wo.dedupeRetentionMs = cfg_.ingest.dedupeRetentionMs;
    wo.walSync = walSync_.get();
    writer_ = std::make_unique<WriterStage>(wo, *batchWriter_, clock_, commitQueue_, writerStats_);
    writer_->setHeartbeat([this] { writerProgress_->beat(); }, [this] { writerProgress_->busy("commit"); });
    writer_->setFatal([this](const Status& s) { fatal(kExitIoErr, s); });
    keyListener_.emplace(*processor_);
    ackListener_.emplace(acks_);
    writer_->addListener(*metrics_);
    writer_->addListener(*keyListener_);
    startExporters();
    writer_->addListener(*exportListener_);
    writer_->addListener(*ackListener_);  // last: producers hear of a batch once all else did

    ingest::Options io;
    io.pull = cfg_.ingest.pull;
    io.router = cfg_.ingest.router;
    io.receiveHwm = cfg_.ingest.receiveHwm;
    io.sendHwm = cfg_.ingest.sendHwm;
    io.maxMessageBytes = cfg_.ingest.maxMessageBytes;
    io.deadLetterInputBytes = cfg_.store.deadLetterInputBytes;
    io.handshakeIvlMs = cfg_.ingest.handshakeIvlMs;
    io.heartbeatIvlMs = cfg_.ingest.heartbeatIvlMs;
    io.heartbeatTimeoutMs = cfg_.ingest.heartbeatTimeoutMs;
    io.dedupeRetentionMs = cfg_.ingest.dedupeRetentionMs;
    io.batch.maxEvents = cfg_.batch.maxEvents;
    io.batch.maxBytes = cfg_.batch.maxBytes;
    io.batch.maxDelayMs = cfg_.batch.maxDelayMs;
    io.batch.closeWhenIdle = cfg_.batch.closeWhenIdle;
    if (curveSecret_.size() == 32) {
        io.curveSecretKey.assign(reinterpret_cast<const char*>(curveSecret_.data()), curveSecret_.size());
        io.curveClients = cfg_.ingest.curveClients;
        log::info("CURVE on: ", io.curveClients.size(), " producer key(s) allowed");
    }
    curveSecret_ = privacy::SecretBytes();  // the ingest options hold the only copy now
    receiver_ = std::make_unique<ingest::Receiver>(std::move(io), clock_, std::move(*dedupe_), lastBatch_ + 1,
                                                   batchQueue_, acks_, ingestStats_);
    dedupe_.reset();
    receiver_->setHeartbeat([this] { ingestProgress_->beat(); });

    if (Status s = processor_->start(runtime_, watermarks_); !s) {
        log::error(s.message());
        fail(kExitSoftware);
    }
    writer_->start();
    pipelineStarted_ = true;
    if (Status s = receiver_->start(); !s) {
        log::error(s.message());
        fail(kExitUnavailable);
    }
}

// The exporters: threads of their own that read what the writer committed; the writer only
// wakes them.
void Daemon::startExporters()
{
    exports::ExportSet::Options eo;
    eo.database = cfg_.store.database;
    eo.wrapper = &*wrapper_;
    eo.nice = cfg_.exporterNice;
    eo.pieceRows = static_cast<size_t>(cfg_.testing.exportPieceRows);
    eo.cursors = &cursorMailbox_;
    eo.pipelinePausedNs = &ingestStats_.pausedNs;
    eo.busyPercent = cfg_.exporterBusyPercent;
    batchWriter_->setCursorMailbox(&cursorMailbox_);  // the writer thread has not started yet
    exporters_ = std::make_unique<exports::ExportSet>(eo, lastBatch_, clock_.wallMs());
    if (Status s = exporters_->apply(cfg_.pipelineSpec); !s) {
        log::error(s.message());
        fail(kExitConfig);
    }
    exportListener_.emplace(*exporters_, clock_);
    exportMetrics_.emplace(registry_, *exporters_);
}

void Daemon::startMetricsEndpoint()
{
    if (cfg_.metricsListen.empty())
        return;
    MetricsServer::Options mo;
    mo.listen = cfg_.metricsListen;
    auto server = MetricsServer::start(ioc_, mo, [this] {
        metrics_->sync();
        exportMetrics_->sync();
        return registry_.render();
    });
    if (!server) {
        log::error("metrics endpoint: ", server.status().message());
        fail(kExitUnavailable);
    }
    metricsServer_ = std::move(*server);
}

void Daemon::announceReady()
{
    std::string endpoints;
    for (const std::string& e : receiver_->boundEndpoints())
        endpoints += (endpoints.empty() ? "" : ", ") + e;
    // SIGTERM/SIGINT/SIGHUP are caught from here on, before anyone hears the daemon is ready: a
    // stop sent right after the line below or READY=1 is queued for serve(), not fatal.
    signals_.emplace(ioc_, SIGTERM, SIGINT, SIGHUP);
    log::notice("sluiced ", SLUICE_VERSION, " ready: ", cfg_.pipelineSpec->contracts.size(), " contract(s), ",
                cfg_.pipelineSpec->outputs.size(), " output(s), ", cfg_.pipelineSpec->aggregations.size(),
                " aggregation(s), ", cfg_.pipelineSpec->exporters.size(), " exporter(s); database ", cfg_.store.database, " (", marks_, " producer marks, next batch ",
                lastBatch_ + 1, "); listening on ", endpoints,
                metricsServer_ ? "; metrics on http://" + metricsServer_->address() + "/metrics" : std::string());
    notifier_.ready();
    notifier_.status("ready; waiting for events");
    if (cfg_.demo) {
        const auto bound = receiver_->boundEndpoints();
        const bool acknowledged = !cfg_.ingest.router.empty();
        const std::string endpoint = acknowledged ? bound[cfg_.ingest.pull.size()] : bound.front();
        demo_ = std::make_unique<Demo>(cfg_.store.database, endpoint, acknowledged);
    }
}

// The main loop: signals, the watchdog tick and the metrics endpoint, until SIGTERM/SIGINT or
// a pipeline thread's fault stops it.
void Daemon::serve()
{
    std::function<void(const boost::system::error_code&, int)> wait;
    wait = [this, &wait](const boost::system::error_code& ec, int signo) {
        if (ec)
            return;
        onSignal(signo);
        if (signo == SIGHUP)
            signals_->async_wait(wait);
    };
    signals_->async_wait(wait);

    timer_.emplace(ioc_);
    tickEvery_ = watchdogInterval_ ? std::min<std::chrono::nanoseconds>(*watchdogInterval_ / 4, std::chrono::seconds(1))
                                   : std::chrono::nanoseconds(std::chrono::seconds(1));
    lastTickMs_ = clock_.wallMs();
    std::function<void(const boost::system::error_code&)> onTick;
    onTick = [this, &onTick](const boost::system::error_code& ec) {
        if (ec)
            return;
        tick();
        timer_->expires_after(tickEvery_);
        timer_->async_wait(onTick);
    };
    timer_->expires_after(tickEvery_);
    timer_->async_wait(onTick);

    try {
        ioc_.run();
    } catch (const std::exception& e) {
        log::error("main loop failed: ", e.what());
        fatal(kExitSoftware, Status::internal(e.what()));
    }
    notifier_.stopping();
    if (metricsServer_)
        metricsServer_->stop();
}

void Daemon::onSignal(int signo)
{
    if (signo == SIGHUP) {
        reload();
        return;
    }
    log::notice(signo == SIGTERM ? "SIGTERM" : "SIGINT", ": draining");
    notifier_.stopping();
    ioc_.stop();
}

// SIGHUP: contracts and pipelines are read again; the new configuration must compile and fit the
// database's tables, else it is refused and the running one stays.
void Daemon::reload()
{
    notifier_.reloading();
    log::notice("SIGHUP: reloading contracts and pipelines");
    Status result = [&]() -> Status {
        auto spec = config::loadPipeline(cfg_.pipeline);
        if (!spec)
            return spec.status();
        auto next = PipelineRuntime::build(*spec, *wrapper_);
        if (!next)
            return next.status();
        store::Db::Options ro;
        ro.readOnly = true;
        auto db = store::Db::open(cfg_.store.database, ro);
        if (!db)
            return db.status();
        SLUICE_RETURN_IF_ERROR(store::checkTables(*db, (*next)->schema->tables));
        SLUICE_RETURN_IF_ERROR(exports::ExportSet::check(**spec));
        processor_->setPipeline(*next);
        // The open batch began under the old configuration and keeps it to its end; close it,
        // so that what is read from now on starts a batch under the new one.
        receiver_->cutBatch();
        SLUICE_RETURN_IF_ERROR(exporters_->apply(*spec));
        log::notice("reload accepted: ", (*spec)->contracts.size(), " contract(s), ", (*spec)->outputs.size(),
                    " output(s), ", (*spec)->aggregations.size(), " aggregation(s), ", (*spec)->exporters.size(),
                    " exporter(s); applies from the next batch");
        return Status::ok();
    }();
    if (!result)
        log::error("reload refused, the running configuration stays: ", result.message());
    notifier_.ready();
}

// Every tick: a watchdog ping while every stage makes progress, a STATUS= line, and memory the
// batches freed handed back to the kernel.
void Daemon::tick()
{
    auto health = watchdog_->tick(std::chrono::nanoseconds(clock_.monoNs()));
    if (health) {
        if (watchdogInterval_)
            notifier_.watchdogPing();
        stalledReported_ = false;
    } else if (!stalledReported_) {
        log::error(health.describe(), "; no more watchdog pings (under systemd, sluiced will be restarted)");
        stalledReported_ = true;
    }
    const int64_t now = clock_.wallMs();
    const uint64_t events = writerStats_.events.load();
    const double rate = now > lastTickMs_ ? static_cast<double>(events - lastEvents_) * 1000.0 /
                                                static_cast<double>(now - lastTickMs_)
                                          : 0.0;
    lastEvents_ = events;
    lastTickMs_ = now;
    notifier_.status(statusLine(processorStats_, writerStats_, rate, now));
    // Batches come and go in different threads' malloc arenas; hand their free pages back to
    // the kernel so that the resident size reflects what is in use.
    ::malloc_trim(0);
}

// Drain: ingest stops reading and hands on its open batch; the processor and the writer finish
// what they have; the last replies go out. After a fault the queues are already closed and the
// same sequence only joins the threads.
void Daemon::shutdownPipeline()
{
    if (!pipelineStarted_)
        return;
    pipelineStarted_ = false;
    receiver_->requestDrain();
    receiver_->join();
    batchQueue_.close();
    processor_->join();
    commitQueue_.close();
    writer_->join();
    // After the last commit: each exporter makes durable what it holds and saves its cursor.
    if (exporters_)
        exporters_->stopAll();
    ingestProgress_->retire();
    processorProgress_->retire();
    writerProgress_->retire();
}

void Daemon::reportDrained(std::chrono::steady_clock::time_point since)
{
    log::notice("stopped after draining in ",
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count(),
                " ms: ", writerStats_.batches.load(), " batch(es), ", writerStats_.events.load(), " event(s) committed");
}

void Daemon::fatal(int exitCode, const Status& why)
{
    int none = 0;
    if (!fatalExit_.compare_exchange_strong(none, exitCode))
        return;
    log::error(why.message(), "; stopping (exit ", exitCode, ")");
    boost::asio::post(ioc_, [this] { ioc_.stop(); });
}

}  // namespace

int runDaemon(const config::Config& cfg)
{
    Daemon daemon(cfg);
    return daemon.run();
}

}  // namespace sluice::service
