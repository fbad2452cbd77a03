// One configured exporter: a thread of its own that reads what the daemon committed from the
// database and hands it to its sink, then advances its cursor in the database.
//
// It never touches the pipeline: the writer thread only wakes it (notify(), through the
// ExportSet), so a slow or dead sink never slows ingest or commits. It reads in chunks under
// short read snapshots (the WAL can be checkpointed and truncated between them): whole batches
// while they are small, a large batch's events and derived rows in pieces of `pieceRows` rowids
// (the sink sees the batch written with its last piece). It shares what it reads with the other
// exporters (ExportFeed: each piece is read and encoded once), holds at most one chunk of records
// in memory (about `chunkRows` records), and after a restart or a failure catches up from its
// cursor, at a batch's start. A sink that fails is closed and opened again with backoff (1 s doubling to
// 30 s); the state change is logged once, not every attempt.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/spec.h"
#include "core/status.h"
#include "export/export_feed.h"
#include "export/pipeline_pressure.h"
#include "export/sink.h"
#include "privacy/key_wrap.h"

namespace sluice::store {
class CursorMailbox;
}

namespace sluice::exports {

// Counters any thread may read (metrics, status).
struct ExporterStats {
    std::atomic<uint64_t> records{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> retries{0};
    std::atomic<uint64_t> exportedBatch{0};    // durable in the sink
    std::atomic<uint64_t> lagBatches{0};
    std::atomic<double> lagSeconds{0.0};
    std::atomic<bool> up{false};
    std::atomic<bool> refused{false};  // stopped: the sink refuses to go on (Sink::refusal)
    std::atomic<uint64_t> tombstones{0};
    std::atomic<uint64_t> readRecords{0};  // read and encoded by this exporter (the rest came from the feed)
    std::atomic<uint64_t> yieldedUs{0};    // slept to give way to a saturated pipeline (PipelinePressure)
};

// What the exporters know of the commits (set by the ExportSet from the writer thread).
struct CommitClock {
    std::atomic<uint64_t> lastBatch{0};
    std::atomic<int64_t> lastCommitMs{0};
};

class Exporter {
public:
    struct Options {
        std::string database;
        ExporterSpec spec;
        PipelinePtr pipeline;
        const privacy::KeyWrapper* wrapper = nullptr;  // for keys; outlives the exporter
        ExportFeed* feed = nullptr;  // shared with the other exporters; outlives the exporter
        size_t chunkBatches = 16;
        size_t chunkRows = 2000;  // a chunk ends at the first piece or batch that reaches it
        size_t pieceRows = 2000;  // rowids of a source read at a time
        int64_t idlePollMs = 1000;  // shredding is noticed at least this often
        // The thread's nice value (and that of the threads its sink starts: librdkafka's,
        // ZeroMQ's); 0 leaves it as the daemon's.
        int nice = 0;
        // Set (the daemon): the cursor's progress goes into the database with the writer's
        // commits (store/cursor_mailbox.h); a first save and a changed sink state are still
        // written at once on the exporter's own connection. Outlives the exporter.
        store::CursorMailbox* cursors = nullptr;
        // Set (the daemon): ingest's paused time (IngestStats::pausedNs). While it shows the
        // pipeline saturated, the exporter works at most `busyPercent` of the time
        // (export/pipeline_pressure.h). Outlives the exporter.
        const std::atomic<int64_t>* pipelinePausedNs = nullptr;
        int busyPercent = 100;
    };

    Exporter(Options options, std::unique_ptr<Sink> sink, const CommitClock& clock);
    ~Exporter();
    Exporter(const Exporter&) = delete;
    Exporter& operator=(const Exporter&) = delete;

    void start();
    // Asks the thread to finish: what is written is made durable (force sync) if the sink is up.
    void stop();
    // Something was committed or shredded: look again.
    void notify();

    const std::string& name() const { return options_.spec.name; }
    const ExporterSpec& spec() const { return options_.spec; }
    const PipelineSpec& pipeline() const { return *options_.pipeline; }
    const ExporterStats& stats() const { return stats_; }

private:
    struct Source;
    // Where the exporter stands inside a batch it hands over in pieces (batch 0: at a batch's start).
    struct Piece {
        uint64_t batch = 0;
        size_t part = 0;     // the source (index into sources_; sources_.size(): the keys)
        int64_t from = 0;    // the next rowid of that source's range (0: its first)
        size_t index = 0;    // records of that source handed over so far
        size_t total = 0;    // that source's records in the batch (Sink::wantsTotals())
    };
    void run();
    Status prepare();
    Status openSink();
    Status exportChunk(bool& more);
    // The records of one source (or the keys, with nullptr) in batch `b`: from the feed, or read.
    Result<SharedRecords> recordsOf(Source* source, const store::CommittedBatch& b, const store::RowRange& range);
    Status readRows(Source& source, const store::CommittedBatch& b, const store::RowRange& range, RecordSet& out);
    Status readKeys(const store::CommittedBatch& b, const store::RowRange& range, RecordSet& out);
    Status syncSink(bool force);
    void saveCursor(int64_t nowMs);
    void failed(const Status& why);
    void updateLag();
    // Sleeps after `workNs` of this thread's CPU if the pipeline is saturated (or until stop()).
    void yieldToPipeline(int64_t workNs);

    Options options_;
    std::unique_ptr<Sink> sink_;
    const CommitClock& clock_;
    ExporterStats stats_;
    std::vector<std::unique_ptr<Source>> sources_;
    std::vector<std::string> fingerprints_;  // of sources_ (and the keys), in the ExportFeed

    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool notified_ = false;
    std::thread thread_;

    // Exporter thread only.
    store::CommittedReader* reader_ = nullptr;
    store::Db* cursorDb_ = nullptr;
    SinkPosition read_;     // read and handed to the sink (whole batches)
    Piece next_;            // the batch after read_ when it is handed over in part
    SinkPosition durable_;  // durable in the sink
    SinkPosition saved_;    // in the database
    std::string cursorState_;
    bool sinkOpen_ = false;
    int64_t retryAtMs_ = 0;
    int64_t backoffMs_ = 0;
    int64_t lastSaveMs_ = 0;
    int64_t oldestUnsavedCommitMs_ = 0;
    PipelinePressure pressure_{100};
};

}  // namespace sluice::exports
