#include "service/processor.h"

#include <chrono>

#include "core/log.h"
#include "core/thread_name.h"
#include "transform/db_key_source.h"

namespace sluice::service {

void ProcessorStats::add(const WriteBatch& wb, const transform::KeyCacheCounts& keys)
{
    const BatchRecord& rec = wb.record;
    batches.fetch_add(1, std::memory_order_relaxed);
    received.fetch_add(rec.received, std::memory_order_relaxed);
    accepted.fetch_add(rec.committed, std::memory_order_relaxed);
    duplicates.fetch_add(rec.duplicates, std::memory_order_relaxed);
    late.fetch_add(wb.lateEvents, std::memory_order_relaxed);
    keysCreated.fetch_add(rec.keysCreated, std::memory_order_relaxed);
    keysCached.store(keys.resident, std::memory_order_relaxed);
    keysLoaded.store(keys.loads, std::memory_order_relaxed);
    for (size_t r = 0; r < kReasonCount; ++r)
        if (wb.rejectedByReason[r])
            rejected[r].fetch_add(wb.rejectedByReason[r], std::memory_order_relaxed);
    parseUs.fetch_add(static_cast<uint64_t>(wb.times.parseUs), std::memory_order_relaxed);
    transformUs.fetch_add(static_cast<uint64_t>(wb.times.transformUs), std::memory_order_relaxed);
    aggregateUs.fetch_add(static_cast<uint64_t>(wb.times.aggregateUs), std::memory_order_relaxed);
    if (!wb.lateByAggregation.empty()) {
        std::lock_guard lock(lateMutex);
        for (const auto& [name, count] : wb.lateByAggregation)
            lateByAggregation[name] += count;
    }
}

Processor::Processor(Options options, const Clock& clock, const privacy::KeyWrapper& wrapper, BoundedQueue<Batch>& in,
                     BoundedQueue<WriteBatch>& out, ProcessorStats& stats)
    : options_(std::move(options)), clock_(clock), wrapper_(wrapper), in_(in), out_(out), stats_(stats),
      pool_(options_.workers), keyPolicy_(options_.keyLifetimeMs)
{
}

Processor::~Processor()
{
    if (thread_.joinable()) {
        in_.close();
        thread_.join();
    }
}

void Processor::setHeartbeat(std::function<void()> beat) { beat_ = std::move(beat); }

void Processor::setFatal(std::function<void(const Status&)> fatal) { fatal_ = std::move(fatal); }

void Processor::setPipeline(std::shared_ptr<const transform::PipelineRuntime> pipeline)
{
    std::lock_guard lock(pendingMutex_);
    pendingPipeline_ = std::move(pipeline);
}

void Processor::committed(const std::vector<KeyRecord>& keys, const std::vector<std::string>& shredded)
{
    std::lock_guard lock(pendingMutex_);
    pendingStored_.insert(pendingStored_.end(), keys.begin(), keys.end());
    pendingShredded_.insert(pendingShredded_.end(), shredded.begin(), shredded.end());
}

void Processor::join()
{
    if (thread_.joinable())
        thread_.join();
}

Status Processor::start(std::shared_ptr<const transform::PipelineRuntime> pipeline,
                        const std::vector<std::pair<std::string, int64_t>>& watermarks)
{
    transform::Transformer::Parts parts{pool_, wrapper_, keyPolicy_,
                                        transform::databaseKeySources(options_.databasePath), clock_,
                                        transform::databaseOpenWindows(options_.databasePath, wrapper_)};
    auto transformer = transform::Transformer::create(options_.transform, std::move(parts), std::move(pipeline),
                                                      watermarks);
    if (!transformer)
        return transformer.status();
    transformer_ = std::move(*transformer);
    thread_ = std::thread([this] {
        nameThisThread("sluice-process");
        run();
    });
    return Status::ok();
}

void Processor::applyNotices()
{
    std::shared_ptr<const transform::PipelineRuntime> next;
    std::vector<KeyRecord> stored;
    std::vector<std::string> shredded;
    {
        std::lock_guard lock(pendingMutex_);
        next = std::move(pendingPipeline_);
        stored.swap(pendingStored_);
        shredded.swap(pendingShredded_);
    }
    transformer_->keysStored(stored);
    transformer_->keysShredded(shredded);
    if (next) {
        if (Status s = transformer_->setPipeline(next); !s)
            log::error("the new configuration could not be applied, keeping the old one: ", s.message());
        else
            log::notice("configuration reloaded: applies from the next batch");
    }
}

void Processor::run()
{
    // The open batch: its parts are transformed as they come; the final one finishes it.
    bool open = false;
    uint64_t openId = 0;
    uint64_t openBytes = 0;
    auto failed = [&](const Status& why) {
        // Nothing of this batch may be committed or acknowledged. Stop taking batches; the writer
        // commits what it already has, and the owner shuts the daemon down.
        in_.close();
        out_.close();
        if (fatal_)
            fatal_(why.withContext("batch " + std::to_string(openId) + " cannot be transformed"));
    };
    while (true) {
        if (beat_)
            beat_();
        auto part = in_.popFor(std::chrono::milliseconds(500));
        if (!part) {
            if (in_.closed())
                break;
            continue;
        }
        const int64_t takenNs = clock_.monoNs();
        if (part->first) {
            applyNotices();
            transformer_->begin(part->id, part->openedAtMs);
            open = true;
            openId = part->id;
            openBytes = 0;
        }
        if (!open || part->id != openId) {
            failed(Status::internal("part of batch " + std::to_string(part->id) + " arrived out of order"));
            return;
        }
        openBytes += part->bytes;
        if (Status s = transformer_->addRequests(part->requests); !s) {
            failed(s);
            return;
        }
        part->requests.clear();  // the events were copied out: free the payloads now
        if (!part->final) {
            // Whenever the writer has taken everything handed to it, it gets this batch's rows so
            // far, to write in the batch's open transaction while the rest is transformed. A busy
            // writer gets them later, in one bigger part; the processor never waits for it in
            // the middle of a batch.
            if (transformer_->hasPart() && out_.size() == 0 && !out_.push(transformer_->takePart()))
                break;
            continue;
        }
        BatchRecord close;
        close.closedAtMs = part->closedAtMs;
        close.closedMonoNs = part->closedMonoNs;
        close.closeReason = part->closeReason;
        close.bytes = openBytes;
        auto wb = transformer_->finish(close);
        open = false;
        if (!wb) {
            failed(wb.status());
            return;
        }
        // From the close to the processor taking the final part.
        wb->times.queuedUs = std::max<int64_t>(0, (takenNs - part->closedMonoNs) / 1000);
        stats_.add(*wb, transformer_->keyCounts());
        wb->record.transformedMonoNs = clock_.monoNs();
        if (beat_)
            beat_();
        if (!out_.push(std::move(*wb)))
            break;
    }
    // A clean end (or a writer that stopped, which takes nothing more): the open sessions of
    // session windows not yet in a snapshot, so that the next start replays nothing.
    if (!open) {
        if (auto snapshot = transformer_->snapshotSessions())
            out_.push(std::move(*snapshot));
    }
    out_.close();
}

}  // namespace sluice::service
