#include "service/writer_stage.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/thread_name.h"
#include "core/log.h"
#include "store/key_table.h"

namespace sluice::service {

WriterStage::WriterStage(Options options, store::BatchWriter& writer, const Clock& clock, BoundedQueue<WriteBatch>& in,
                         ingest::AckChannel& acks, Processor& processor, WriterStats& stats)
    : options_(std::move(options)), writer_(writer), clock_(clock), in_(in), acks_(acks), processor_(processor),
      stats_(stats)
{
    lastMaintenanceMs_ = clock_.wallMs() - options_.maintenanceEveryMs + 5'000;  // first run soon after start
}

WriterStage::~WriterStage()
{
    join();
}

void WriterStage::setHeartbeat(std::function<void()> beat, std::function<void()> busy)
{
    beat_ = std::move(beat);
    busy_ = std::move(busy);
}

void WriterStage::start()
{
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
    while (true) {
        if (beat_)
            beat_();
        auto batch = in_.popFor(std::chrono::milliseconds(500));
        if (batch) {
            commit(*batch);
        } else if (in_.closed()) {
            break;
        }
        if (clock_.wallMs() - lastMaintenanceMs_ >= options_.maintenanceEveryMs)
            maintain();
    }
    acks_.close();
}

void WriterStage::commit(WriteBatch& batch)
{
    if (busy_)
        busy_();
    // Test hook: behave like a writer stuck in the file system.
    while (!options_.stallFile.empty() && ::access(options_.stallFile.c_str(), F_OK) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));

    if (batch.schema)
        options_.pipeline = batch.schema->pipeline;
    std::vector<std::string> shredded;
    store::CommitTiming timing;
    Status s = writer_.commit(batch, shredded, timing);
    if (!s) {
        // Nothing of this batch is acknowledged. Do not retry on this handle: a failed commit
        // may leave the connection in an unknown state. systemd restarts the daemon; SQLite
        // recovers from the WAL; producers resend what was not acknowledged.
        log::error("commit of batch ", batch.record.id, " failed, exiting without acknowledging it: ", s.message());
        std::fflush(stderr);
        std::_Exit(74);  // EX_IOERR
    }
    const int64_t now = clock_.monoNs();
    stats_.batches.fetch_add(1, std::memory_order_relaxed);
    stats_.events.fetch_add(batch.record.committed, std::memory_order_relaxed);
    stats_.rejected.fetch_add(batch.record.rejected, std::memory_order_relaxed);
    stats_.bytes.fetch_add(batch.record.bytes, std::memory_order_relaxed);
    stats_.writeUs.fetch_add(static_cast<uint64_t>(timing.writeUs), std::memory_order_relaxed);
    stats_.commitUs.fetch_add(static_cast<uint64_t>(timing.commitUs), std::memory_order_relaxed);
    stats_.lastCommitMs.store(clock_.wallMs(), std::memory_order_relaxed);
    if (stats_.observe)
        stats_.observe(batch, timing, now - batch.record.closedMonoNs);
    if (!shredded.empty())
        log::notice(shredded.size(), " key(s) were shredded by another process; no new event will use them");
    processor_.committed(batch.keys, shredded);
    if (!batch.outcomes.empty())
        acks_.push(ingest::AckBatch{batch.record.id, std::move(batch.outcomes)});
}

void WriterStage::maintain()
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
            log::error("maintenance failed on a storage fault, exiting: ", report.status().message());
            std::fflush(stderr);
            std::_Exit(74);
        }
        log::warning("maintenance failed, will retry: ", report.status().message());
        return;
    }
    if (report->shredded.keys) {
        stats_.keysShredded.fetch_add(static_cast<uint64_t>(report->shredded.keys), std::memory_order_relaxed);
        log::notice("retention: shredded ", report->shredded.keys, " key(s)");
        processor_.committed({}, report->shredded.keyLinks);
        Status s = store::checkpointTruncate(writer_.db(), 2000);
        if (!s)
            log::warning("after retention: ", s.message());
    }
    stats_.derivedRowsShredded.fetch_add(static_cast<uint64_t>(report->derivedRows), std::memory_order_relaxed);
    if (report->derivedRows)
        log::info("retention: removed ", report->derivedRows, " derived row(s) past their contract's retention");
    if (report->deadLetters)
        log::info("retention: removed ", report->deadLetters, " dead letter(s)");
}

}  // namespace sluice::service
