// The SQL side of recomputing an aggregation from the committed events (sluicectl reprocess):
// the events read back in arrival order, a shadow table in the connection's temp schema that
// receives what the recomputing Aggregator flushes, and the one transaction that replaces the
// final windows of a range with the shadow's rows. docs/aggregation.md, "Reprocessing", says
// why only final windows are replaced while the daemon runs.
//
// One thread, one writable connection (not the daemon's).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/commit.h"
#include "core/spec.h"
#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

// Calls `fn` with every event of the events table `table` whose seq lies in (afterSeq, uptoSeq],
// in seq order (the order the daemon committed them), the statement positioned on the row,
// whose columns are `columns` in that order. An error from `fn` stops the loop and is returned.
Status forEachEventInOrder(Db& db, const std::string& table, const std::vector<std::string>& columns,
                           int64_t afterSeq, int64_t uptoSeq, const std::function<Status(const Stmt&)>& fn);
// The largest seq of `table` (0 when empty).
Result<int64_t> lastEventSeq(Db& db, const std::string& table);
// The largest seq of `table` whose batch_id is at most `batchId` (0 when none). Rows are
// inserted in commit order, so batch_id grows with seq: a binary search over seq, no index.
Result<int64_t> lastSeqOfBatch(Db& db, const std::string& table, uint64_t batchId);

// A session aggregation's snapshot (session_snapshots): the batch it covers and the contract's
// max event time after that batch (nullopt before the first event).
struct SessionSnapshot {
    uint64_t batchId = 0;
    std::optional<int64_t> maxEventTimeMs;
};
// nullopt when the aggregation has none (new, or kept by a sluice before snapshots).
Result<std::optional<SessionSnapshot>> loadSessionSnapshot(Db& db, const std::string& aggregation);
// Calls `fn` with the state of every session of the aggregation's snapshot.
Status forEachSessionState(Db& db, const std::string& aggregation,
                           const std::function<Status(std::string_view state)>& fn);
// The contract's max_event_time from the watermarks table; nullopt before its first event.
Result<std::optional<int64_t>> storedMaxEventTime(Db& db, const std::string& contract);
// The aggregations table's definition of `name`; nullopt when the database has none.
Result<std::optional<std::string>> storedAggregationDefinition(Db& db, const std::string& name);

// The keys by link, for looking up every key a contract's events name. The keys table has no
// index on key_link (the daemon's writer would pay for one on every new key), so
// store::keyByLink() scans the table, once per link; this builds a temp-schema index of
// (key_link, rowid) in one pass at create() and reads each key by rowid. Keys stored after that
// are indexed when a lookup misses (a rowid range scan past the last one indexed), so a lookup
// sees every key of the connection's current snapshot. The connection's thread only.
class KeyLinkIndex {
public:
    struct Key {
        uint32_t keyId = 0;
        std::string wrapped;
    };

    static Result<KeyLinkIndex> create(Db& db);
    KeyLinkIndex(KeyLinkIndex&& other) noexcept;
    KeyLinkIndex& operator=(KeyLinkIndex&&) = delete;
    ~KeyLinkIndex();

    // The key stored under `keyLink`, of any kind (the first one, if a link was stored twice);
    // nullopt when there is none: never stored, or shredded.
    Result<std::optional<Key>> byLink(std::string_view keyLink);
    // Links indexed so far.
    int64_t size() const { return size_; }

private:
    KeyLinkIndex() = default;
    Status indexNewKeys();
    Result<std::optional<Key>> find(std::string_view keyLink);

    Db* db_ = nullptr;
    Stmt find_;
    Stmt addAfter_;
    Stmt maxRowid_;
    int64_t lastRowid_ = 0;  // keys up to this rowid are indexed
    int64_t size_ = 0;
};

// What a replacement changed.
struct ReplaceSummary {
    int64_t deletedRows = 0;   // stored windows removed
    int64_t writtenRows = 0;   // recomputed windows written
    int64_t lateWindows = 0;   // late_events rows written (replay only)
};

// Which windows a replacement covers: those starting in [fromMs, toMs) that are final at
// `watermarkMs` (tumbling and sliding: window_start + sizeMs <= watermark; session:
// window_end <= watermark).
struct ReplaceRange {
    std::string aggregation;
    WindowKind window = WindowKind::kTumbling;
    int64_t sizeMs = 0;
    int64_t gapMs = 0;
    int64_t fromMs = 0;
    int64_t toMs = 0;
    int64_t watermarkMs = 0;
    bool complete = false;  // the rows are marked complete = 1; late_events stay as they are
};

// A temp-schema copy of agg_<name>'s layout, and of late_events for one aggregation, that an
// Aggregator's flushes are applied to (as the daemon's writer applies them to the real tables).
class ShadowAggregation {
public:
    // `table` must exist; the shadow starts empty. The connection needs the sketch functions
    // (registerSketchFunctions) before apply().
    static Result<std::unique_ptr<ShadowAggregation>> create(Db& db, const std::string& table,
                                                             const std::string& aggregation);
    ~ShadowAggregation();

    // Applies one flush: deletes, upserts and finalizes of agg_<name>, the aggregation's
    // late_events upserts; watermark upserts are ignored. Touches only the temp schema.
    Status apply(const WriteBatch& out);
    // Within the caller's write transaction on the same connection: deletes the stored final
    // windows of the range and writes the shadow's final windows of the range (final = 1,
    // complete as asked). Sessions: a stored session is replaced when a written session covers
    // it (same group, its start within the written session's first and last event), or when it
    // starts in the range, is final and no recomputed session covers it (its events dropped
    // out: their subject was forgotten); stored sessions covered by a recomputed session that is
    // not written (open, or starting outside the range) stay. Replay (not complete) also
    // replaces the range's late_events rows.
    Result<ReplaceSummary> replace(const ReplaceRange& range);
    // Rows of the shadow table (for tests and the summary line).
    Result<int64_t> rows();

private:
    ShadowAggregation(Db& db, std::string table, std::string aggregation);

    Db& db_;
    std::string table_;        // agg_<name>
    std::string shadow_;       // its temp copy
    std::string aggregation_;
    std::string lateShadow_;   // temp copy of the aggregation's late_events
    std::string columns_;      // the table's columns but final and complete, quoted, comma-separated
    StatementCache statements_;
};

}  // namespace sluice::store
