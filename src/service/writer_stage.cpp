#include "service/writer_stage.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/log.h"
#include "core/thread_name.h"
#include "ingest/protocol.h"
#include "store/dead_letters.h"
#include "store/key_table.h"

namespace sluice::service {
namespace {

// A duplicate is answered as its original was: the commit filled in the counts; the per-event
// errors come back from the original's dead letters (one more than a reply lists, so that the
// reply says when it truncated them).
void fillDuplicateErrors(store::Db& db, std::vector<RequestOutcome>& outcomes)
{
    for (RequestOutcome& o : outcomes) {
        if (o.state != RequestState::kDuplicate || o.rejected == 0)
            continue;
        auto errors = store::requestErrors(db, o.producer, o.seq, ingest::kMaxErrorsInReply + 1);
        if (!errors) {
            log::warning("the reply to a retry of producer ", o.producer, " seq ", o.seq,
                         " goes without its errors: ", errors.status().message());
            continue;
        }
        o.errors = std::move(*errors);
    }
}

}  // namespace

WriterStage::WriterStage(Options options, store::BatchWriter& writer, const Clock& clock, BoundedQueue<WriteBatch>& in,
                         WriterStats& stats)
    : options_(std::move(options)), writer_(writer), clock_(clock), in_(in), stats_(stats)
{
    lastMaintenanceMs_ = clock_.wallMs() - options_.maintenanceEveryMs + 5'000;  // first run soon after start
}

WriterStage::~WriterStage()
{
    join();
}

void WriterStage::addListener(CommitListener& listener) { listeners_.push_back(&listener); }

void WriterStage::setHeartbeat(std::function<void()> beat, std::function<void()> busy)
{
    beat_ = std::move(beat);
    busy_ = std::move(busy);
}

void WriterStage::setFatal(std::function<void(const Status&)> fatal) { fatal_ = std::move(fatal); }

void WriterStage::start()
{
    if (options_.walSync)
        syncThread_ = std::thread([this] {
            nameThisThread("sluice-sync");
            syncLoop();
        });
    thread_ = std::thread([this] {
        nameThisThread("sluice-writer");
        run();
    });
}

void WriterStage::join()
{
    if (thread_.joinable())
        thread_.join();
}

void WriterStage::run()
{
    bool faulted = false;
    while (true) {
        if (beat_)
            beat_();
        auto batch = in_.popFor(std::chrono::milliseconds(500));
        if (batch) {
            if (!write(*batch)) {
                faulted = true;
                break;
            }
        } else if (in_.closed()) {
            break;
        } else if (!writer_.batchOpen()) {
            // No batch for a while: the exporters' cursors go in a transaction of their own.
            if (Status s = writer_.commitCursors(); !s)
                log::warning(s.message());
        }
        if (!writer_.batchOpen() && clock_.wallMs() - lastMaintenanceMs_ >= options_.maintenanceEveryMs &&
            !maintain()) {
            faulted = true;
            break;
        }
    }
    if (writer_.batchOpen()) {
        // The processor stopped in the middle of a batch (it failed, and said so), or a sync
        // failed: nothing of the batch stays.
        writer_.abortBatch();
    }
    // From here the exporters save their cursors themselves (nobody else writes any more). Not
    // on a connection whose commit or sync failed.
    if (Status s = writer_.closeCursors(!faulted && !syncFailed_.load()); !s)
        log::warning(s.message());
    // What was committed is synced and announced before the listeners hear of the end.
    toSync_.close();
    if (syncThread_.joinable())
        syncThread_.join();
    for (CommitListener* l : listeners_)
        l->writerStopped();
}

void WriterStage::syncLoop()
{
    std::vector<Committed> group;
    while (auto first = toSync_.pop()) {
        group.clear();
        group.push_back(std::move(*first));
        while (auto more = toSync_.tryPop())
            group.push_back(std::move(*more));
        const int64_t start = clock_.monoNs();
        if (Status s = options_.walSync->sync(); !s) {
            syncFailed_.store(true);
            // Nothing of these commits (nor of any after them) may be announced; the owner shuts
            // the daemon down, and producers resend what they were not told of. Retries of
            // whatever did reach the disk are answered as duplicates.
            toSync_.close();
            in_.close();
            if (fatal_)
                fatal_(s.withContext("batch " + std::to_string(group.front().batch.record.id) +
                                     " committed but could not be made durable, exiting without acknowledging it"));
            return;
        }
        // The flush is part of every synced batch's commit; each is charged its share.
        const int64_t syncUs = (clock_.monoNs() - start) / 1000;
        for (Committed& c : group) {
            if (c.retention) {
                announceRetention(c.retentionKeyLinks);
                continue;
            }
            c.timing.commitUs += syncUs / static_cast<int64_t>(group.size());
            announce(c.batch, c.shredded, c.timing);
        }
    }
}

void WriterStage::announce(WriteBatch& batch, const std::vector<std::string>& shredded,
                           const store::CommitTiming& timing)
{
    const int64_t nowNs = clock_.monoNs();
    CommitInfo info{batch, shredded, timing, nowNs - batch.record.closedMonoNs};
    const BatchRecord& r = batch.record;
    if (r.closedMonoNs > 0 && r.transformedMonoNs >= r.closedMonoNs && r.committedMonoNs >= r.transformedMonoNs) {
        stats_.tailNs.fetch_add(r.transformedMonoNs - r.closedMonoNs, std::memory_order_relaxed);
        stats_.writeCommitNs.fetch_add(r.committedMonoNs - r.transformedMonoNs, std::memory_order_relaxed);
        stats_.syncNs.fetch_add(nowNs - r.committedMonoNs, std::memory_order_relaxed);
        stats_.timedBatches.fetch_add(1, std::memory_order_relaxed);
    }
    stats_.batches.fetch_add(1, std::memory_order_relaxed);
    stats_.events.fetch_add(batch.record.committed, std::memory_order_relaxed);
    stats_.rejected.fetch_add(batch.record.rejected, std::memory_order_relaxed);
    stats_.bytes.fetch_add(batch.record.bytes, std::memory_order_relaxed);
    stats_.writeUs.fetch_add(static_cast<uint64_t>(timing.writeUs), std::memory_order_relaxed);
    stats_.commitUs.fetch_add(static_cast<uint64_t>(timing.commitUs), std::memory_order_relaxed);
    stats_.lastCommitMs.store(clock_.wallMs(), std::memory_order_relaxed);
    if (!shredded.empty())
        log::notice(shredded.size(), " key(s) were shredded by another process; no new event will use them");
    for (CommitListener* l : listeners_)
        l->committed(info);
}

void WriterStage::announceRetention(const std::vector<std::string>& keyLinks)
{
    for (CommitListener* l : listeners_)
        l->shreddedByRetention(keyLinks);
}

void WriterStage::stop(const Status& fault)
{
    // Do not retry on this connection: a failed commit may leave it in an unknown state. Nothing
    // more is committed; SQLite recovers from the WAL when the daemon starts again.
    writer_.abortBatch();
    in_.close();
    if (fatal_)
        fatal_(fault);
}

bool WriterStage::write(WriteBatch& batch)
{
    if (busy_)
        busy_();
    if (batch.stateOnly) {
        if (Status s = writer_.commitState(batch); !s) {
            stop(s);
            return false;
        }
        return true;
    }
    // Test hook: behave like a writer stuck in the file system just before a commit.
    while (batch.closesBatch && !options_.stallFile.empty() && ::access(options_.stallFile.c_str(), F_OK) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));

    const std::string failed = "commit of batch " + std::to_string(batch.record.id) +
                               " failed, exiting without acknowledging it";
    if (batch.opensBatch) {
        if (batch.schema)
            options_.pipeline = batch.schema->pipeline;
        shredded_.clear();
        partKeys_.clear();
        if (Status s = writer_.beginBatch(batch, shredded_); !s) {
            stop(s.withContext(failed));
            return false;
        }
    }
    if (!batch.closesBatch) {
        if (Status s = writer_.writePart(batch); !s) {
            stop(s.withContext(failed));
            return false;
        }
        // Their rowids are set; the key notices go out with the batch, once it is durable.
        for (KeyRecord& k : batch.keys)
            partKeys_.push_back(std::move(k));
        return true;
    }
    store::CommitTiming timing;
    if (Status s = writer_.commitBatch(batch, timing); !s) {
        stop(s.withContext(failed));
        return false;
    }
    batch.record.committedMonoNs = clock_.monoNs();
    for (KeyRecord& k : partKeys_)
        batch.keys.push_back(std::move(k));
    partKeys_.clear();
    fillDuplicateErrors(writer_.db(), batch.outcomes);
    if (!options_.walSync) {
        announce(batch, shredded_, timing);
        return true;
    }
    // The rows are in the database; the listeners need only the batch's record, keys and
    // outcomes. Its memory goes now, not after the sync.
    Committed c;
    c.batch.record = batch.record;
    c.batch.times = batch.times;
    c.batch.keys = std::move(batch.keys);
    c.batch.outcomes = std::move(batch.outcomes);
    c.batch.rejectedByReason = batch.rejectedByReason;
    c.batch.lateEvents = batch.lateEvents;
    c.batch.lateByAggregation = std::move(batch.lateByAggregation);
    c.shredded = std::move(shredded_);
    shredded_.clear();
    c.timing = timing;
    return toSync_.push(std::move(c));  // false: a sync failed (the sync thread said so)
}

bool WriterStage::maintain()
{
    lastMaintenanceMs_ = clock_.wallMs();
    store::MaintenancePlan plan;
    plan.nowMs = lastMaintenanceMs_;
    plan.keyLifetimeMs = options_.keyLifetimeMs;
    if (options_.pipeline) {
        for (const ContractSpec& c : options_.pipeline->contracts) {
            store::RetentionRule rule;
            rule.contract = c.ref;
            rule.days = c.retentionDays;
            for (const OutputSpec& o : options_.pipeline->outputs)
                if (o.contract == c.ref)
                    rule.derivedTables.push_back(o.tableName());
            plan.retention.push_back(std::move(rule));
        }
    }
    plan.deadLetterRetentionMs = options_.deadLetterRetentionMs;
    plan.dedupeWindow = options_.dedupeWindow;
    plan.dedupeRetentionMs = options_.dedupeRetentionMs;
    if (busy_)
        busy_();
    auto report = store::runMaintenance(writer_.db(), plan);
    if (!report) {
        if (report.status().code() == StatusCode::kIoError || report.status().code() == StatusCode::kCorruption) {
            stop(report.status().withContext("maintenance failed on a storage fault"));
            return false;
        }
        log::warning("maintenance failed, will retry: ", report.status().message());
        return true;
    }
    if (report->shredded.keys) {
        stats_.keysShredded.fetch_add(static_cast<uint64_t>(report->shredded.keys), std::memory_order_relaxed);
        log::notice("retention: shredded ", report->shredded.keys, " key(s)");
        if (options_.walSync) {
            // In commit order with the batches, once synced.
            Committed c;
            c.retention = true;
            c.retentionKeyLinks = report->shredded.keyLinks;
            if (!toSync_.push(std::move(c)))
                return false;
        } else {
            announceRetention(report->shredded.keyLinks);
        }
        Status s = store::checkpointTruncate(writer_.db(), 2000);
        if (!s)
            log::warning("after retention: ", s.message());
    }
    stats_.derivedRowsShredded.fetch_add(static_cast<uint64_t>(report->derivedRows), std::memory_order_relaxed);
    if (report->derivedRows)
        log::info("retention: removed ", report->derivedRows, " derived row(s) past their contract's retention");
    if (report->deadLetters)
        log::info("retention: removed ", report->deadLetters, " dead letter(s)");
    return true;
}

}  // namespace sluice::service
