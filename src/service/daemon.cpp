#include "service/daemon.h"

#include <malloc.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>

#include "aggregate/hyper_log_log.h"
#include "core/clock.h"
#include "core/log.h"
#include "ingest/receiver.h"
#include "privacy/key_wrap.h"
#include "service/demo.h"
#include "service/master_key.h"
#include "service/metrics.h"
#include "service/metrics_server.h"
#include "service/notify.h"
#include "service/pipeline_runtime.h"
#include "service/processor.h"
#include "service/writer_stage.h"
#include "store/batch_writer.h"
#include "store/fault_vfs.h"
#include "store/schema.h"
#include "store/state.h"

namespace sluice::service {
namespace {

constexpr int kExitUnavailable = 69;
constexpr int kExitSoftware = 70;
constexpr int kExitIo = 74;
constexpr int kExitConfig = 78;


// Pipeline counters live in the stages as plain atomics; the registry is brought up to date
// from them whenever /metrics is scraped.
class DaemonMetrics {
public:
    DaemonMetrics(Registry& r, const ingest::IngestStats& ingest, ProcessorStats& processor,
                  const WriterStats& writer, const BoundedQueue<Batch>& batches,
                  const BoundedQueue<WriteBatch>& commits)
        : registry_(r), ingest_(ingest), processor_(processor), writer_(writer), batchQueue_(batches),
          commitQueue_(commits),
          received_(r.counter("sluice_events_received_total", "Events received (every line of every message).")),
          committed_(r.counter("sluice_events_committed_total", "Events committed to the database.")),
          duplicates_(r.counter("sluice_events_duplicate_total",
                                "Events in retried requests that were already committed (applied zero times).")),
          late_(r.counter("sluice_events_late_total",
                          "Late events summed over aggregations (an event late for two aggregations counts twice).")),
          batches_(r.counter("sluice_batches_total", "Batches committed.")),
          messages_(r.counter("sluice_ingest_messages_total", "ZeroMQ messages received.")),
          bytes_(r.counter("sluice_ingest_bytes_total", "Bytes of message bodies received.")),
          replies_(r.counter("sluice_replies_total", "Replies sent to acknowledged producers.")),
          repliesDropped_(r.counter("sluice_replies_dropped_total",
                                    "Replies that could not be sent (producer gone or its queue full); it retries.")),
          keysCreated_(r.counter("sluice_keys_created_total", "Data keys created.")),
          keysShredded_(r.counter("sluice_keys_shredded_total", "Keys shredded by retention.")),
          pausedUs_(r.counter("sluice_ingest_paused_microseconds_total",
                              "Time ingest stopped reading because the pipeline was full (backpressure).")),
          keysCached_(r.gauge("sluice_keys_cached", "Active data keys held in memory.")),
          batchQueueDepth_(r.gauge("sluice_queue_depth", "Batches waiting between stages.", {{"queue", "transform"}})),
          commitQueueDepth_(r.gauge("sluice_queue_depth", "Batches waiting between stages.", {{"queue", "commit"}})),
          lastCommit_(r.gauge("sluice_last_commit_timestamp_seconds", "Wall-clock time of the last commit.")),
          batchEvents_(r.histogram("sluice_batch_events", "Events per committed batch.",
                                   {1, 10, 100, 1000, 2500, 5000, 10000, 25000, 100000})),
          commitSeconds_(r.histogram("sluice_commit_seconds", "Time to COMMIT a batch (the fsync).",
                                     exponentialBuckets(0.0001, 2, 14))),
          batchLatency_(r.histogram("sluice_batch_latency_seconds",
                                    "From a batch closing to its commit (what an acknowledgement waits for).",
                                    exponentialBuckets(0.001, 2, 14)))
    {
        r.gauge("sluice_build_info", "Build information.", {{"version", SLUICE_VERSION}}).set(1);
        for (size_t i = 0; i < kReasonCount; ++i)
            rejected_[i] = &r.counter("sluice_events_rejected_total", "Events rejected, by reason.",
                                      {{"reason", std::string(reasonCode(static_cast<Reason>(i)))}});
        const char* stages[] = {"receive", "parse", "transform", "aggregate", "write", "commit"};
        for (size_t i = 0; i < stageUs_.size(); ++i)
            stageUs_[i] = &r.counter("sluice_stage_microseconds_total",
                                     "Time spent per pipeline stage (wall time of its phase).", {{"stage", stages[i]}});
    }

    void observe(const WriteBatch& batch, const store::CommitTiming& timing, int64_t latencyNs)
    {
        batchEvents_.observe(static_cast<double>(batch.record.received));
        commitSeconds_.observe(static_cast<double>(timing.commitUs) / 1e6);
        batchLatency_.observe(static_cast<double>(latencyNs) / 1e9);
    }

    void sync()
    {
        auto set = [](Counter& c, uint64_t v) {
            uint64_t now = c.value();
            if (v > now)
                c.inc(v - now);
        };
        set(received_, processor_.received.load());
        set(committed_, writer_.events.load());
        set(duplicates_, processor_.duplicates.load());
        set(late_, processor_.late.load());
        set(batches_, writer_.batches.load());
        set(messages_, ingest_.messages.load());
        set(bytes_, ingest_.bytes.load());
        set(replies_, ingest_.repliesSent.load());
        set(repliesDropped_, ingest_.repliesDropped.load());
        set(keysCreated_, processor_.keysCreated.load());
        set(keysShredded_, writer_.keysShredded.load());
        set(pausedUs_, static_cast<uint64_t>(ingest_.pausedNs.load() / 1000));
        for (size_t i = 0; i < kReasonCount; ++i)
            set(*rejected_[i], processor_.rejected[i].load());
        set(*stageUs_[0], static_cast<uint64_t>(ingest_.busyNs.load() / 1000));
        set(*stageUs_[1], processor_.parseUs.load());
        set(*stageUs_[2], processor_.transformUs.load());
        set(*stageUs_[3], processor_.aggregateUs.load());
        set(*stageUs_[4], writer_.writeUs.load());
        set(*stageUs_[5], writer_.commitUs.load());
        {
            std::lock_guard lock(processor_.lateMutex);
            for (const auto& [aggregation, count] : processor_.lateByAggregation)
                set(registry_.counter("sluice_aggregation_late_events_total",
                                      "Events that arrived for a final window of this aggregation (not counted in it).",
                                      {{"aggregation", aggregation}}),
                    count);
        }
        keysCached_.set(static_cast<double>(processor_.keysCached.load()));
        batchQueueDepth_.set(static_cast<double>(batchQueue_.size()));
        commitQueueDepth_.set(static_cast<double>(commitQueue_.size()));
        lastCommit_.set(static_cast<double>(writer_.lastCommitMs.load()) / 1000.0);
    }

private:
    Registry& registry_;
    const ingest::IngestStats& ingest_;
    ProcessorStats& processor_;
    const WriterStats& writer_;
    const BoundedQueue<Batch>& batchQueue_;
    const BoundedQueue<WriteBatch>& commitQueue_;
    Counter& received_;
    Counter& committed_;
    Counter& duplicates_;
    Counter& late_;
    Counter& batches_;
    Counter& messages_;
    Counter& bytes_;
    Counter& replies_;
    Counter& repliesDropped_;
    Counter& keysCreated_;
    Counter& keysShredded_;
    Counter& pausedUs_;
    Gauge& keysCached_;
    Gauge& batchQueueDepth_;
    Gauge& commitQueueDepth_;
    Gauge& lastCommit_;
    Histogram& batchEvents_;
    Histogram& commitSeconds_;
    Histogram& batchLatency_;
    std::array<Counter*, kReasonCount> rejected_{};
    std::array<Counter*, 6> stageUs_{};
};

struct ExitCode {
    int code;
};

// Every way out of runDaemon after this point tells systemd it is stopping.
class StoppingGuard {
public:
    explicit StoppingGuard(Notifier& n) : notifier_(n) {}
    ~StoppingGuard() { notifier_.stopping(); }

private:
    Notifier& notifier_;
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

Status checkMasterKey(store::Db& db, const privacy::KeyWrapper& wrapper)
{
    auto check = store::getMeta(db, store::kMasterKeyCheckMeta);
    if (!check)
        return check.status();
    if (*check)
        return wrapper.verifyCheck(**check);
    auto keys = db.queryInt("SELECT count(*) FROM keys");
    if (!keys)
        return keys.status();
    if (keys->value_or(0) > 0)
        return Status::corruption("the database holds keys but no master-key check value; refusing to guess");
    auto made = wrapper.makeCheck();
    if (!made)
        return made.status();
    return store::setMeta(db, store::kMasterKeyCheckMeta, *made);
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

}  // namespace

int runDaemon(const config::Config& cfg)
{
    Notifier notifier;
    StoppingGuard stopping(notifier);
    log::Level level = log::Level::kInfo;
    log::parseLevel(cfg.logLevel, level);
    log::setLevel(level);
    SystemClock& clock = SystemClock::instance();

    if (Status s = ensureStateDir(cfg.stateDir); !s) {
        log::error(s.message());
        return kExitIo;
    }
    auto master = loadMasterKey(cfg, cfg.demo);
    if (!master) {
        log::error(master.status().message());
        return kExitConfig;
    }
    privacy::SecretBytes curveSecret;
    if (!cfg.ingest.curveSecretKeyFile.empty()) {
        auto secret = privacy::readSecretFile(cfg.ingest.curveSecretKeyFile, 32);
        if (!secret) {
            log::error("CURVE: ", secret.status().message());
            return kExitConfig;
        }
        curveSecret = std::move(*secret);
    }
    if (master->created)
        log::warning("DEMO: created a new master key at ", master->source,
                     " (mode 0600). It protects every key in the database: keep it secret, keep a copy.");
    auto wrapper = privacy::KeyWrapper::create(std::move(master->bytes));
    if (!wrapper) {
        log::error(wrapper.status().withContext(master->source).message());
        return kExitConfig;
    }

    store::BatchWriter::Options writerOptions;
    writerOptions.path = cfg.store.database;
    writerOptions.cacheBytes = static_cast<int64_t>(cfg.store.cacheBytes);
    writerOptions.backgroundCheckpoints = true;
    writerOptions.sketches.merge = aggregate::mergeSerialized;
    writerOptions.sketches.estimate = aggregate::estimateSerialized;
    if (!cfg.testing.failWritesFile.empty()) {
        if (Status s = store::registerFaultVfs(cfg.testing.failWritesFile); !s) {
            log::error(s.message());
            return kExitSoftware;
        }
        writerOptions.vfs = store::kFaultVfsName;
        log::warning("testing: database writes fail while ", cfg.testing.failWritesFile, " exists");
    }
    auto writer = store::BatchWriter::open(writerOptions);
    if (!writer) {
        log::error(writer.status().message());
        return writer.status().code() == StatusCode::kInvalidArgument ? kExitConfig : kExitIo;
    }
    // After a crash SQLite has already rolled the WAL forward or back; check before accepting
    // anything that the file is sound.
    if (Status s = store::quickCheck((*writer)->db()); !s) {
        log::error(cfg.store.database, ": ", s.message());
        return kExitIo;
    }
    if (Status s = checkMasterKey((*writer)->db(), *wrapper); !s) {
        log::error(cfg.store.database, ": ", s.message());
        return s.code() == StatusCode::kPermission ? kExitConfig : kExitIo;
    }

    auto runtime = PipelineRuntime::build(cfg.pipelineSpec, *wrapper);
    if (!runtime) {
        log::error(runtime.status().message());
        return kExitConfig;
    }
    if (Status s = (*writer)->applySchema(*cfg.pipelineSpec, (*runtime)->schema->tables, clock.wallMs()); !s) {
        log::error(cfg.store.database, ": recording the schema and pipeline: ", s.message());
        // A full or failing disk is not a configuration problem.
        return s.code() == StatusCode::kIoError || s.code() == StatusCode::kCorruption ? kExitIo : kExitConfig;
    }

    auto lastBatch = (*writer)->lastBatchId();
    auto watermarks = store::loadWatermarks((*writer)->db());
    if (!lastBatch || !watermarks) {
        log::error((!lastBatch ? lastBatch.status() : watermarks.status()).message());
        return kExitIo;
    }
    ingest::DedupeIndex dedupe(cfg.ingest.dedupeWindow);
    size_t marks = 0;
    const int64_t startMs = clock.wallMs();
    if (Status s = store::forEachMark((*writer)->db(),
                                      [&](store::MarkRow&& m) {
                                          dedupe.load(m.producer, m.seq, startMs);
                                          ++marks;
                                      });
        !s) {
        log::error(s.message());
        return kExitIo;
    }

    BoundedQueue<Batch> batchQueue(1);
    BoundedQueue<WriteBatch> commitQueue(1);
    ingest::AckChannel acks;
    ingest::IngestStats ingestStats;
    ProcessorStats processorStats;
    WriterStats writerStats;
    Registry registry;
    DaemonMetrics metrics(registry, ingestStats, processorStats, writerStats, batchQueue, commitQueue);
    writerStats.observe = [&metrics](const WriteBatch& b, const store::CommitTiming& t, int64_t ns) {
        metrics.observe(b, t, ns);
    };

    const auto watchdogInterval = notifier.watchdogInterval();
    const auto stallLimit = watchdogInterval ? std::max<std::chrono::nanoseconds>(*watchdogInterval / 2,
                                                                                   std::chrono::milliseconds(500))
                                             : std::chrono::nanoseconds(std::chrono::seconds(30));
    ProgressWatchdog watchdog(stallLimit);
    auto& ingestStage = watchdog.addStage("ingest");
    auto& processorStage = watchdog.addStage("processor");
    auto& writerStage = watchdog.addStage("writer");

    Processor::Options po;
    po.workers = cfg.workers;
    po.limits.maxEventBytes = cfg.ingest.maxEventBytes;
    po.limits.maxDepth = cfg.ingest.maxDepth;
    po.limits.maxFutureMs = cfg.pipeline.maxFutureMs;
    po.keyLifetimeMs = cfg.privacy.keyLifetimeMs;
    po.keyCacheEntries = cfg.privacy.keyCacheEntries;
    po.deadLetterInputBytes = cfg.store.deadLetterInputBytes;
    po.databasePath = cfg.store.database;
    Processor processor(po, clock, *wrapper, batchQueue, commitQueue, processorStats);
    processor.setHeartbeat([&processorStage] { processorStage.beat(); });
    if (Status s = processor.start(*runtime, *watermarks); !s) {
        log::error(s.message());
        return kExitSoftware;
    }

    WriterStage::Options wo;
    wo.stallFile = cfg.testing.stallWriterFile;
    wo.pipeline = cfg.pipelineSpec;
    wo.keyLifetimeMs = cfg.privacy.keyLifetimeMs;
    wo.deadLetterRetentionMs = cfg.store.deadLetterRetentionMs;
    wo.dedupeWindow = cfg.ingest.dedupeWindow;
    wo.dedupeRetentionMs = cfg.ingest.dedupeRetentionMs;
    WriterStage writerThread(wo, **writer, clock, commitQueue, acks, processor, writerStats);
    writerThread.setHeartbeat([&writerStage] { writerStage.beat(); }, [&writerStage] { writerStage.busy("commit"); });
    writerThread.start();

    ingest::Options io;
    io.pull = cfg.ingest.pull;
    io.router = cfg.ingest.router;
    io.receiveHwm = cfg.ingest.receiveHwm;
    io.sendHwm = cfg.ingest.sendHwm;
    io.maxMessageBytes = cfg.ingest.maxMessageBytes;
    io.deadLetterInputBytes = cfg.store.deadLetterInputBytes;
    io.handshakeIvlMs = cfg.ingest.handshakeIvlMs;
    io.heartbeatIvlMs = cfg.ingest.heartbeatIvlMs;
    io.heartbeatTimeoutMs = cfg.ingest.heartbeatTimeoutMs;
    io.dedupeRetentionMs = cfg.ingest.dedupeRetentionMs;
    io.batch.maxEvents = cfg.batch.maxEvents;
    io.batch.maxBytes = cfg.batch.maxBytes;
    io.batch.maxDelayMs = cfg.batch.maxDelayMs;
    if (curveSecret.size() == 32) {
        io.curveSecretKey.assign(reinterpret_cast<const char*>(curveSecret.data()), curveSecret.size());
        io.curveClients = cfg.ingest.curveClients;
        log::info("CURVE on: ", io.curveClients.size(), " producer key(s) allowed");
    }
    ingest::Receiver receiver(std::move(io), clock, std::move(dedupe), *lastBatch + 1, batchQueue, acks, ingestStats);
    receiver.setHeartbeat([&ingestStage] { ingestStage.beat(); });

    auto shutdownPipeline = [&] {
        receiver.requestDrain();
        receiver.join();
        batchQueue.close();
        processor.join();
        commitQueue.close();
        writerThread.join();
    };

    if (Status s = receiver.start(); !s) {
        log::error(s.message());
        batchQueue.close();
        processor.join();
        writerThread.join();
        return kExitUnavailable;
    }

    boost::asio::io_context ioc;
    std::unique_ptr<MetricsServer> metricsServer;
    if (!cfg.metricsListen.empty()) {
        MetricsServer::Options mo;
        mo.listen = cfg.metricsListen;
        auto server = MetricsServer::start(ioc, mo, [&] {
            metrics.sync();
            return registry.render();
        });
        if (!server) {
            log::error("metrics endpoint: ", server.status().message());
            shutdownPipeline();
            return kExitUnavailable;
        }
        metricsServer = std::move(*server);
    }

    std::string endpoints;
    for (const std::string& e : receiver.boundEndpoints())
        endpoints += (endpoints.empty() ? "" : ", ") + e;
    log::notice("sluiced ", SLUICE_VERSION, " ready: ", cfg.pipelineSpec->contracts.size(), " contract(s), ",
                cfg.pipelineSpec->outputs.size(), " output(s), ", cfg.pipelineSpec->aggregations.size(),
                " aggregation(s); database ", cfg.store.database, " (", marks, " producer marks, next batch ",
                *lastBatch + 1, "); listening on ", endpoints,
                metricsServer ? "; metrics on http://" + metricsServer->address() + "/metrics" : std::string());
    notifier.ready();
    notifier.status("ready; waiting for events");

    std::unique_ptr<Demo> demo;
    if (cfg.demo) {
        const auto bound = receiver.boundEndpoints();
        const bool acknowledged = !cfg.ingest.router.empty();
        const std::string endpoint = acknowledged ? bound[cfg.ingest.pull.size()] : bound.front();
        demo = std::make_unique<Demo>(cfg.store.database, endpoint, acknowledged);
    }

    // Main loop: signals, watchdog, status.
    bool stopRequested = false;
    boost::asio::signal_set signals(ioc, SIGTERM, SIGINT, SIGHUP);
    std::function<void(const boost::system::error_code&, int)> onSignal;
    onSignal = [&](const boost::system::error_code& ec, int signo) {
        if (ec)
            return;
        if (signo == SIGHUP) {
            notifier.reloading();
            log::notice("SIGHUP: reloading contracts and pipelines");
            Status result = [&]() -> Status {
                auto spec = config::loadPipeline(cfg.pipeline);
                if (!spec)
                    return spec.status();
                auto next = PipelineRuntime::build(*spec, *wrapper);
                if (!next)
                    return next.status();
                store::Db::Options ro;
                ro.readOnly = true;
                auto db = store::Db::open(cfg.store.database, ro);
                if (!db)
                    return db.status();
                SLUICE_RETURN_IF_ERROR(store::checkTables(*db, (*next)->schema->tables));
                processor.setPipeline(*next);
                log::notice("reload accepted: ", (*spec)->contracts.size(), " contract(s), ", (*spec)->outputs.size(),
                            " output(s), ", (*spec)->aggregations.size(), " aggregation(s); applies from the next batch");
                return Status::ok();
            }();
            if (!result)
                log::error("reload refused, the running configuration stays: ", result.message());
            notifier.ready();
            signals.async_wait(onSignal);
            return;
        }
        log::notice(signo == SIGTERM ? "SIGTERM" : "SIGINT", ": draining");
        notifier.stopping();
        stopRequested = true;
        if (metricsServer)
            metricsServer->stop();
        ioc.stop();
    };
    signals.async_wait(onSignal);

    boost::asio::steady_timer timer(ioc);
    const auto tickEvery = watchdogInterval
                               ? std::min<std::chrono::nanoseconds>(*watchdogInterval / 4, std::chrono::seconds(1))
                               : std::chrono::nanoseconds(std::chrono::seconds(1));
    bool stalledReported = false;
    uint64_t lastEvents = 0;
    int64_t lastTickMs = clock.wallMs();
    std::function<void(const boost::system::error_code&)> onTick;
    onTick = [&](const boost::system::error_code& ec) {
        if (ec)
            return;
        auto health = watchdog.tick(std::chrono::nanoseconds(clock.monoNs()));
        if (health) {
            if (watchdogInterval)
                notifier.watchdogPing();
            stalledReported = false;
        } else if (!stalledReported) {
            log::error(health.describe(), "; no more watchdog pings (under systemd, sluiced will be restarted)");
            stalledReported = true;
        }
        const int64_t now = clock.wallMs();
        const uint64_t events = writerStats.events.load();
        const double rate = now > lastTickMs ? static_cast<double>(events - lastEvents) * 1000.0 /
                                                   static_cast<double>(now - lastTickMs)
                                             : 0.0;
        lastEvents = events;
        lastTickMs = now;
        notifier.status(statusLine(processorStats, writerStats, rate, now));
        // Batches come and go in different threads' malloc arenas; hand their free pages back
        // to the kernel so that the resident size reflects what is in use.
        ::malloc_trim(0);
        timer.expires_after(tickEvery);
        timer.async_wait(onTick);
    };
    timer.expires_after(tickEvery);
    timer.async_wait(onTick);

    try {
        ioc.run();
    } catch (const std::exception& e) {
        log::error("main loop failed: ", e.what());
    }
    (void)stopRequested;
    const auto drainStart = std::chrono::steady_clock::now();
    if (demo)
        demo->stop();
    shutdownPipeline();
    ingestStage.retire();
    processorStage.retire();
    writerStage.retire();
    log::notice("stopped after draining in ",
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - drainStart).count(),
                " ms: ", writerStats.batches.load(), " batch(es), ", writerStats.events.load(), " event(s) committed");
    return 0;
}

}  // namespace sluice::service
