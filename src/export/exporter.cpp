#include "export/exporter.h"

#include <algorithm>
#include <chrono>

#include "core/clock.h"
#include "core/log.h"
#include "core/row_json.h"
#include "core/thread_name.h"
#include "privacy/consent.h"
#include "privacy/tink_keyset.h"
#include "store/cursor_mailbox.h"
#include "store/db.h"

namespace sluice::exports {
namespace {

constexpr int64_t kFirstBackoffMs = 1000;
constexpr int64_t kMaxBackoffMs = 30'000;
constexpr int64_t kSaveEveryMs = 200;

}  // namespace

// A configured source, ready to read: which table's ranges to follow, the query, the encoder.
struct Exporter::Source {
    ExportSourceSpec spec;
    std::string table;  // the table whose row range the batch records
    store::RowQuery query;
    RowEncoder encoder;
    std::string fingerprint;           // in the ExportFeed
    std::vector<std::string> groupBy;  // aggregations: the key of a window record
    int keyColumn = -1;                // column of the record key, per result set
    std::vector<int> groupColumns;
    std::string key, value;            // one record's text, before the RecordSet copies it
};

Exporter::Exporter(Options options, std::unique_ptr<Sink> sink, const CommitClock& clock)
    : options_(std::move(options)), sink_(std::move(sink)), clock_(clock), pressure_(options_.busyPercent)
{
}

Exporter::~Exporter()
{
    stop();
}

void Exporter::start()
{
    thread_ = std::thread([this] {
        // export-file, export-stream, export-kafka: the thread's CPU shows per exporter type.
        nameThisThread(("export-" + std::string(exporterTypeName(options_.spec.type))).c_str());
        if (options_.nice > 0 && !niceThisThread(options_.nice))
            log::warning("exporter '", options_.spec.name, "': cannot lower its priority (nice ", options_.nice, ")");
        run();
    });
}

void Exporter::stop()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

void Exporter::notify()
{
    {
        std::lock_guard lock(mutex_);
        notified_ = true;
    }
    wake_.notify_all();
}

Status Exporter::prepare()
{
    const PipelineSpec& p = *options_.pipeline;
    for (const ExportSourceSpec& s : options_.spec.sources) {
        auto src = std::make_unique<Source>();
        src->spec = s;
        src->fingerprint = sourceFingerprint(p, s);
        switch (s.kind) {
        case ExportSourceSpec::Kind::kContract: {
            const ContractSpec* c = p.findContract(s.name);
            if (!c)
                return Status::invalid("no contract " + s.name);
            src->table = c->tableName();
            src->query = store::RowQuery::tableRows(src->table);
            src->encoder = RowEncoder::forEvents(*c);
            break;
        }
        case ExportSourceSpec::Kind::kOutput: {
            auto o = std::find_if(p.outputs.begin(), p.outputs.end(), [&](const OutputSpec& x) { return x.name == s.name; });
            const ContractSpec* c = o == p.outputs.end() ? nullptr : p.findContract(o->contract);
            if (!c)
                return Status::invalid("no output " + s.name);
            src->table = o->tableName();
            src->query = store::RowQuery::derivedRows(*o, *c, privacy::derivedRowFields(*o, *c));
            src->encoder = RowEncoder::forEvents(*c, &*o);
            break;
        }
        case ExportSourceSpec::Kind::kAggregation: {
            auto a = std::find_if(p.aggregations.begin(), p.aggregations.end(),
                                  [&](const AggregationSpec& x) { return x.name == s.name; });
            if (a == p.aggregations.end())
                return Status::invalid("no aggregation " + s.name);
            src->table = a->tableName();
            src->query = store::RowQuery::finalWindows(a->viewName());
            src->groupBy = a->groupBy;
            break;
        }
        }
        fingerprints_.push_back(src->fingerprint);
        sources_.push_back(std::move(src));
    }
    if (options_.spec.keys)
        fingerprints_.push_back(kKeysFingerprint);
    return Status::ok();
}

void Exporter::run()
{
    const std::string& name = options_.spec.name;
    if (Status s = prepare(); !s) {
        log::error("exporter '", name, "': ", s.message());
        return;
    }
    // The reader (short snapshots) and the cursor connection belong to this thread.
    auto reader = store::CommittedReader::open(options_.database);
    store::Db::Options cursorOptions;
    cursorOptions.busyTimeoutMs = 2000;
    cursorOptions.cacheBytes = 256 * 1024;
    // A cursor that falls back after a power loss is corrected from the sink at the next start.
    cursorOptions.syncEveryCommit = false;
    auto cursorDb = store::Db::open(options_.database, cursorOptions);
    if (!reader || !cursorDb) {
        log::error("exporter '", name, "': ", (!reader ? reader.status() : cursorDb.status()).message());
        return;
    }
    reader_ = &*reader;
    cursorDb_ = &*cursorDb;

    auto cursor = store::loadCursor(*cursorDb_, name);
    if (!cursor) {
        log::error("exporter '", name, "': reading its cursor: ", cursor.status().message());
        return;
    }
    // A position posted but not yet in the database is newer than the row: the exporter this
    // one replaces (a reload) stopped a moment ago and handed its last position to the writer.
    if (options_.cursors)
        if (auto posted = options_.cursors->newest(name))
            *cursor = std::move(*posted);
    if (*cursor) {
        read_ = {(*cursor)->batchId, (*cursor)->shredId};
        cursorState_ = (*cursor)->state;
    } else {
        // A new exporter: from the first batch (or the last, with "start": "end"); shredding
        // that happened before it existed concerns nothing it will send.
        auto last = reader_->lastBatchId();
        auto shred = reader_->lastShredId();
        if (!last || !shred) {
            log::error("exporter '", name, "': ", (!last ? last.status() : shred.status()).message());
            return;
        }
        read_ = {options_.spec.startAtEnd ? *last : 0, *shred};
        saved_ = {~0ULL, 0};  // force the first save
    }
    durable_ = read_;
    if (saved_.batchId != ~0ULL)
        saved_ = read_;
    saveCursor(SystemClock::instance().wallMs());
    log::info("exporter '", name, "' (", exporterTypeName(options_.spec.type), ") starts after batch ", read_.batchId);

    int64_t lastShredCheckMs = 0;
    for (;;) {
        bool more = false;
        int64_t now = SystemClock::instance().wallMs();
        if (!sinkOpen_ && now >= retryAtMs_) {
            if (Status s = openSink(); !s)
                failed(s);
        }
        // A sink holding as much as it should (Kafka: records not yet acknowledged) is given no
        // more now; once sync() shows it drained, the loop goes on at once instead of waiting
        // for the next commit (or a second when nothing is committed: catching up).
        const bool full = sinkOpen_ && !sink_->wantsMore();
        const int64_t cpuStart = threadCpuNs();
        if (sinkOpen_ && !full &&
            (clock_.lastBatch.load() > read_.batchId || now - lastShredCheckMs >= options_.idlePollMs)) {
            lastShredCheckMs = now;
            if (Status s = exportChunk(more); !s)
                failed(s);
        }
        if (sinkOpen_) {
            if (Status s = syncSink(false); !s)
                failed(s);
        }
        updateLag();
        yieldToPipeline(threadCpuNs() - cpuStart);
        if (full && sinkOpen_ && sink_->wantsMore() && clock_.lastBatch.load() > read_.batchId)
            more = true;
        if (more)
            continue;

        std::unique_lock lock(mutex_);
        if (stopping_)
            break;
        now = SystemClock::instance().wallMs();
        int64_t until = now + options_.idlePollMs;
        if (sinkOpen_ && sink_->deadlineMs() > 0)
            until = std::min(until, sink_->deadlineMs());
        if (!sinkOpen_)
            until = std::min(until, retryAtMs_);
        if (sinkOpen_ && !sink_->wantsMore())
            until = std::min(until, now + 20);  // waiting for acknowledgements
        if (!notified_ && until > now)
            wake_.wait_for(lock, std::chrono::milliseconds(until - now), [&] { return stopping_ || notified_; });
        notified_ = false;
        if (stopping_)
            break;
    }
    // A batch handed over in part is finished first: a sink makes only whole batches durable.
    // Only that batch: the chunk that finishes it ends there (exportChunk), however far behind.
    for (const uint64_t finishing = next_.batch; sinkOpen_ && next_.batch != 0 && next_.batch == finishing;) {
        bool more = false;
        if (Status s = exportChunk(more); !s) {
            log::warning("exporter '", name, "': at stop: ", s.message());
            failed(s);
        }
    }
    if (sinkOpen_) {
        if (Status s = syncSink(true); !s)
            log::warning("exporter '", name, "': at stop: ", s.message());
        sink_->close();
        sinkOpen_ = false;
    }
    saveCursor(SystemClock::instance().wallMs());
    reader_ = nullptr;
    cursorDb_ = nullptr;
}

Status Exporter::openSink()
{
    SinkPosition position = durable_;
    SLUICE_RETURN_IF_ERROR(sink_->open(position));
    std::string state = cursorState_;
    if (Status s = sink_->checkState(state); !s) {
        sink_->close();
        return s;
    }
    if (state != cursorState_) {
        cursorState_ = std::move(state);
        saved_.batchId = ~0ULL;  // save the new state with the cursor
    }
    if (position.batchId > durable_.batchId || position.shredId > durable_.shredId) {
        log::notice("exporter '", options_.spec.name, "': its sink already holds up to batch ", position.batchId,
                    "; continuing from there");
        durable_.batchId = std::max(durable_.batchId, position.batchId);
        durable_.shredId = std::max(durable_.shredId, position.shredId);
    }
    read_ = durable_;
    next_ = {};
    sinkOpen_ = true;
    backoffMs_ = 0;
    if (!stats_.up.exchange(true))
        log::notice("exporter '", options_.spec.name, "': sink is up");
    saveCursor(SystemClock::instance().wallMs());
    return Status::ok();
}

void Exporter::failed(const Status& why)
{
    stats_.errors.fetch_add(1, std::memory_order_relaxed);
    if (const std::string refusal = sink_->refusal(); !refusal.empty()) {
        // Retrying cannot help: stop until reconfigured (SIGHUP with a changed definition) or restarted.
        if (!stats_.refused.exchange(true))
            log::error("exporter '", options_.spec.name, "' stops: ", refusal);
        stats_.up.store(false);
        if (sinkOpen_)
            sink_->close();
        sinkOpen_ = false;
        read_ = durable_;
        next_ = {};
        retryAtMs_ = INT64_MAX;
        return;
    }
    if (stats_.up.exchange(false) || backoffMs_ == 0)
        log::error("exporter '", options_.spec.name, "': sink failed, retrying with backoff: ", why.message());
    else
        stats_.retries.fetch_add(1, std::memory_order_relaxed);
    if (sinkOpen_)
        sink_->close();
    sinkOpen_ = false;
    read_ = durable_;  // read again what the sink may not hold; open() reconciles
    next_ = {};
    backoffMs_ = backoffMs_ == 0 ? kFirstBackoffMs : std::min(backoffMs_ * 2, kMaxBackoffMs);
    retryAtMs_ = SystemClock::instance().wallMs() + backoffMs_;
}

Status Exporter::exportChunk(bool& more)
{
    std::vector<BatchRecords> chunk;
    std::vector<store::ShredEntry> shreds;
    {
        // Ahead of exporters that are still taking what the feed holds: let them catch up first
        // (bounded memory, nothing read twice), outside the reading lock they need.
        if (options_.feed)
            options_.feed->waitForRoom(read_.batchId, fingerprints_, this, std::chrono::milliseconds(1000));
        // One exporter reads at a time; the others wait and take what it read from the feed.
        std::unique_lock<std::mutex> reading;
        if (options_.feed)
            reading = options_.feed->lockReading();
        SLUICE_RETURN_IF_ERROR(reader_->begin());
        struct EndSnapshot {
            store::CommittedReader* r;
            ~EndSnapshot() { r->end(); }
        } end{reader_};
        auto batches = reader_->batchesAfter(read_.batchId, options_.chunkBatches);
        if (!batches)
            return batches.status();
        more = batches->size() == options_.chunkBatches;
        // Only what is durable: a batch committed but not yet synced could vanish with a power
        // loss after a sink took it, and its id would then be used again for other events.
        const uint64_t durableBatch = clock_.lastBatch.load();
        while (!batches->empty() && batches->back().id > durableBatch) {
            batches->pop_back();
            more = false;
        }
        size_t rows = 0;
        const size_t parts = sources_.size() + (options_.spec.keys ? 1 : 0);
        for (const store::CommittedBatch& b : *batches) {
            // Only the first batch after read_ can have been handed over in part.
            Piece at = next_.batch == b.id ? next_ : Piece{b.id};
            next_ = {};
            BatchRecords out;
            out.batchId = b.id;
            out.committedAtMs = b.committedAtMs;
            out.opens = at.part == 0 && at.from == 0;
            for (; at.part < parts && next_.batch == 0; ++at.part, at.from = 0, at.index = 0, at.total = 0) {
                Source* source = at.part < sources_.size() ? sources_[at.part].get() : nullptr;
                const store::RowRange* range = b.range(source ? source->table : "keys");
                if (!range)
                    continue;
                // Events and derived rows are read a rowid span at a time; windows and keys whole.
                const bool split = source && source->spec.kind != ExportSourceSpec::Kind::kAggregation;
                store::RowRange piece = *range;
                if (split) {
                    piece.first = at.from ? at.from : range->first;
                    piece.last = std::min(range->last, piece.first + static_cast<int64_t>(options_.pieceRows) - 1);
                    if (piece.first == range->first && sink_->wantsTotals()) {
                        auto n = reader_->countRows(b.id, *range);
                        if (!n)
                            return n.status();
                        at.total = static_cast<size_t>(*n);
                    }
                }
                auto records = recordsOf(source, b, piece);
                if (!records)
                    return records.status();
                const size_t n = (*records)->size();
                rows += n;
                out.parts.push_back({source ? static_cast<uint32_t>(at.part) : BatchRecords::kKeysSource,
                                     std::move(*records), at.index, split ? at.total : n});
                if (piece.last < range->last) {
                    next_ = at;  // the rest of this source in the next chunk
                    next_.from = piece.last + 1;
                    next_.index = at.index + n;
                } else if (rows >= options_.chunkRows && at.part + 1 < parts) {
                    next_ = {b.id, at.part + 1};  // the next sources in the next chunk
                }
            }
            out.complete = next_.batch == 0;
            const bool continued = !out.opens;
            chunk.push_back(std::move(out));
            // A batch finished here that was begun in an earlier chunk ends this one too: run on
            // and the next batch's first piece would end it inside that batch, and so would every
            // chunk after it while the exporter catches up: no file would close (a sink closes
            // files between batches only) and no shredding would be handed over until it caught up.
            if (next_.batch != 0 || rows >= options_.chunkRows || continued) {
                more = true;
                break;
            }
        }
        if (next_.batch == 0) {  // shredding goes to the sink between batches
            auto entries = reader_->shredsAfter(read_.shredId, 1000);
            if (!entries)
                return entries.status();
            shreds = std::move(*entries);
        }
    }
    // The snapshot is released: handing records to the sink may take its time.
    for (BatchRecords& b : chunk) {
        uint64_t bytes = 0;
        uint64_t records = 0;
        for (const BatchRecords::Part& part : b.parts) {
            records += part.records->size();
            for (const Record& r : *part.records)
                bytes += r.value.size();
        }
        if (b.opens && (oldestUnsavedCommitMs_ == 0 || durable_.batchId == read_.batchId))
            oldestUnsavedCommitMs_ = b.committedAtMs;
        SLUICE_RETURN_IF_ERROR(sink_->write(b));
        if (b.complete)
            read_.batchId = b.batchId;
        b.parts.clear();  // let go of the records as soon as the sink has them
        stats_.records.fetch_add(records, std::memory_order_relaxed);
        stats_.bytes.fetch_add(bytes, std::memory_order_relaxed);
    }
    if (!shreds.empty()) {
        SLUICE_RETURN_IF_ERROR(sink_->forget(shreds));
        read_.shredId = shreds.back().id;
        for (const store::ShredEntry& e : shreds)
            stats_.tombstones.fetch_add(e.keyLinks.size(), std::memory_order_relaxed);
    }
    return Status::ok();
}

Result<SharedRecords> Exporter::recordsOf(Source* source, const store::CommittedBatch& b, const store::RowRange& range)
{
    const std::string& fingerprint = source ? source->fingerprint : kKeysFingerprint;
    if (options_.feed) {
        if (SharedRecords shared = options_.feed->take(b.id, fingerprint, range.first))
            return shared;
    }
    auto records = std::make_shared<RecordSet>();
    if (!source || source->spec.kind != ExportSourceSpec::Kind::kAggregation)  // a range of rowids: its size is known
        records->reserve(static_cast<size_t>(std::clamp<int64_t>(range.last - range.first + 1, 0, 100'000)));
    SLUICE_RETURN_IF_ERROR(source ? readRows(*source, b, range, *records) : readKeys(b, range, *records));
    stats_.readRecords.fetch_add(records->size(), std::memory_order_relaxed);
    SharedRecords shared = std::move(records);
    if (options_.feed)
        options_.feed->offer(b.id, fingerprint, shared, range.first, this);
    return shared;
}

Status Exporter::readRows(Source& src, const store::CommittedBatch& b, const store::RowRange& range,
                          RecordSet& out)
{
    if (src.spec.kind == ExportSourceSpec::Kind::kAggregation)
        src.encoder =
            RowEncoder::forColumns({{"aggregation", "\"" + src.spec.name + "\""}, {"batch_id", std::to_string(b.id)}});
    bool first = true;
    return reader_->forEachRow(src.query, b.id, range, [&](const store::RowView& row) {
        if (first) {
            first = false;
            src.encoder.prepare(row.names);
            src.keyColumn = -1;
            src.groupColumns.clear();
            for (size_t c = 0; c < row.names.size(); ++c) {
                if (row.names[c] == "key_link")
                    src.keyColumn = static_cast<int>(c);
                for (const std::string& g : src.groupBy)
                    if (row.names[c] == g)
                        src.groupColumns.push_back(static_cast<int>(c));
            }
        }
        const Cell& first0 = row.cells[0];
        int64_t seq = first0.kind == Cell::Kind::kInt ? first0.i() : 0;
        std::string_view key;
        if (src.keyColumn >= 0) {
            key = row.cells[static_cast<size_t>(src.keyColumn)].text();
        } else {
            // Windows: the group values, so that a group's windows stay in order.
            src.key.clear();
            for (int c : src.groupColumns) {
                src.key += src.key.empty() ? "[" : ",";
                const Cell& g = row.cells[static_cast<size_t>(c)];
                if (g.kind == Cell::Kind::kText)
                    appendJsonString(src.key, g.text());
                else if (g.kind == Cell::Kind::kInt)
                    src.key += std::to_string(g.i());
                else
                    src.key += "null";
            }
            if (!src.key.empty())
                src.key += "]";
            key = src.key;
        }
        src.value.clear();
        src.encoder.encode(row.cells, src.value);
        if (src.spec.kind == ExportSourceSpec::Kind::kAggregation) {
            for (size_t c = 0; c < row.names.size(); ++c)
                if (row.names[c] == "window_start_ms" && row.cells[c].kind == Cell::Kind::kInt)
                    seq = row.cells[c].i();
        }
        out.add(seq, key, src.value);
    });
}

Status Exporter::readKeys(const store::CommittedBatch& b, const store::RowRange& range, RecordSet& out)
{
    Status keyStatus;
    SLUICE_RETURN_IF_ERROR(reader_->forEachRow(store::RowQuery::dataKeys(), b.id, range, [&](const store::RowView& row) {
        if (!keyStatus)
            return;
        const std::string link(row.cells[1].text());
        auto key = options_.wrapper->unwrap(row.cells[4].text(), link);
        if (!key) {
            keyStatus = key.status().withContext("key " + link);
            return;
        }
        auto keyset = privacy::tinkKeysetJson(static_cast<uint32_t>(row.cells[2].i()), key->view());
        if (!keyset) {
            keyStatus = keyset.status();
            return;
        }
        out.add(row.cells[0].i(), link, *keyset, row.cells[6].i(), row.cells[3].text());
    }));
    return keyStatus;
}

Status Exporter::syncSink(bool force)
{
    const int64_t now = SystemClock::instance().wallMs();
    auto position = sink_->sync(now, force);
    if (!position)
        return position.status();
    if (position->batchId > durable_.batchId || position->shredId > durable_.shredId) {
        durable_.batchId = std::max(durable_.batchId, position->batchId);
        durable_.shredId = std::max(durable_.shredId, position->shredId);
        stats_.exportedBatch.store(durable_.batchId, std::memory_order_relaxed);
        if (durable_.batchId >= read_.batchId)
            oldestUnsavedCommitMs_ = 0;
    }
    if (force || now - lastSaveMs_ >= kSaveEveryMs)
        saveCursor(now);
    return Status::ok();
}

void Exporter::saveCursor(int64_t nowMs)
{
    if (!cursorDb_ || durable_ == saved_)
        return;
    store::ExportCursor c{durable_.batchId, durable_.shredId, cursorState_};
    // Progress rides on the writer's next commit: this connection would wait for the write lock
    // the writer holds. What must be in the database before the exporter goes on (a new
    // exporter's first position, a changed sink state) is written here, as is everything once
    // the writer has stopped (post() refuses).
    const bool mustWrite = saved_.batchId == ~0ULL;
    // Posted either way: an older position still in the mailbox must not overwrite this one later.
    const bool posted = options_.cursors && options_.cursors->post(options_.spec.name, c, nowMs);
    if (posted && !mustWrite) {
        saved_ = durable_;
        lastSaveMs_ = nowMs;
        return;
    }
    if (Status s = store::saveCursor(*cursorDb_, options_.spec.name, c, nowMs); !s) {
        // Not the sink's fault: keep going (open() reconciles). Posted, the writer's next commit
        // writes it; otherwise the next save tries again.
        log::warning("exporter '", options_.spec.name, "': ", s.message(),
                     posted ? "; it goes with the next batch instead" : "");
        if (!posted)
            return;
    }
    saved_ = durable_;
    lastSaveMs_ = nowMs;
}

void Exporter::yieldToPipeline(int64_t workNs)
{
    if (!options_.pipelinePausedNs)
        return;
    const int64_t sleepNs =
        pressure_.yieldNs(options_.pipelinePausedNs->load(std::memory_order_relaxed), SystemClock::instance().monoNs(), workNs);
    if (sleepNs <= 0)
        return;
    stats_.yieldedUs.fetch_add(static_cast<uint64_t>(sleepNs / 1000), std::memory_order_relaxed);
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, std::chrono::nanoseconds(sleepNs), [&] { return stopping_; });
}

void Exporter::updateLag()
{
    const uint64_t last = clock_.lastBatch.load(std::memory_order_relaxed);
    stats_.exportedBatch.store(durable_.batchId, std::memory_order_relaxed);
    stats_.lagBatches.store(last > durable_.batchId ? last - durable_.batchId : 0, std::memory_order_relaxed);
    double seconds = 0.0;
    if (last > durable_.batchId) {
        // The oldest batch not yet durable: read and pending in the sink, or not read yet.
        const int64_t since = oldestUnsavedCommitMs_ ? oldestUnsavedCommitMs_ : clock_.lastCommitMs.load();
        seconds = std::max<double>(0.0, static_cast<double>(SystemClock::instance().wallMs() - since) / 1000.0);
    }
    stats_.lagSeconds.store(seconds, std::memory_order_relaxed);
}

}  // namespace sluice::exports
