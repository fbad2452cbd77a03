// The aggregates of one aggregation over a stream, batch by batch, and the event-time
// bookkeeping (watermark, late events, final windows) that decides what they may change.
//
// Per batch: add() every event of the aggregation's contract that the batch commits, in
// arrival order; then flush() into the batch's WriteBatch. The writer applies what flush()
// emitted in the batch's transaction. If that transaction does not commit, this object no
// longer matches the database: rebuild it (create(), setMaxEventTimeMs() from the watermarks
// table, then restoreOpenWindow() with every row of openWindowsQuery()).
//
// Window shapes (AggregationSpec::window):
//   tumbling, sliding  the batch's partial aggregates per (window, group), merged into the
//                      stored rows by upsert; nothing is kept between batches but the watermark
//   session            the open sessions of every group, whole, in memory: a session can grow
//                      at either end and merge with another. A flush writes the full row of
//                      every session that became final; open sessions are written only by a
//                      snapshot (flush with a snapshot batch): the rows of those changed since
//                      the previous snapshot, into agg_<name> and the snapshot tables, with the
//                      batch it covers. A restart reads the snapshot back and replays the
//                      batches committed after it (docs/aggregation.md, "Session snapshots").
//
// One thread calls add() and flush(); counters() may be read by that thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "aggregate/aggregation_table.h"
#include "aggregate/hyper_log_log.h"
#include "aggregate/siphash.h"
#include "aggregate/subject_set.h"
#include "core/arena.h"
#include "core/commit.h"
#include "core/spec.h"
#include "core/status.h"
#include "core/value.h"

namespace sluice::aggregate {

// Since construction.
struct AggregatorCounters {
    uint64_t events = 0;      // add() calls
    uint64_t aggregated = 0;  // events added to at least one window
    uint64_t late = 0;        // (event, window) pairs where the window was already final
    uint64_t filtered = 0;    // events without the consent the aggregation requires
    uint64_t outOfRange = 0;  // event time outside [kMinEventTimeMs, kMaxEventTimeMs]: ignored
};

// What one flush() emitted.
struct FlushSummary {
    size_t groupRows = 0;       // rows upserted into agg_<name>
    size_t deletedRows = 0;     // session rows deleted (merged away, or moved to a new start)
    uint64_t lateEvents = 0;    // late (event, window) pairs counted since the previous flush
    bool finalized = false;     // a Finalize was emitted, or a session row was written final
    bool snapshot = false;      // a session snapshot was written
};

class Aggregator {
public:
    // Fails like checkAggregation(). `hashKey` keys the hash of distinct values, of subjects and
    // of pseudonymised group values; it must be the same for every run that merges into the
    // same database, or sketches, subject sets and sessions stop matching.
    static Result<Aggregator> create(const AggregationSpec& spec, const ContractSpec& contract,
                                     std::span<const uint8_t, kSipKeyBytes> hashKey);
    Aggregator(Aggregator&&) noexcept;
    Aggregator& operator=(Aggregator&&) noexcept;
    ~Aggregator();

    // Restores the contract's largest event time seen (the watermarks table) at startup.
    // Never lowers it.
    void setMaxEventTimeMs(int64_t ms);
    std::optional<int64_t> maxEventTimeMs() const;
    // maxEventTime - allowed_lateness: windows ending at or before it are final.
    std::optional<int64_t> watermarkMs() const;

    // One event of the contract. `fields` is indexed like ContractSpec::fields (kMissing when
    // absent; a shorter span reads as missing). Every in-range event moves the max event time,
    // whether or not it passes the consent filter. One that passes goes into every window that
    // holds it (tumbling: one, sliding: size/slide, session: the session it starts, extends or
    // merges), except windows that are already final at the watermark as it was before this
    // event: there it is LATE (counted, changing nothing). Metrics other than count skip
    // missing values, NaN, infinities and values of the wrong kind. Never fails.
    void add(int64_t eventTimeMs, ConsentMask consent, std::span<const Value> fields);

    // Appends this batch's output to `out` and starts the next batch:
    //   tumbling, sliding: the partial rows (sorted by window and group key) as one UpsertRows
    //     for agg_<name> with table().columns(), and one Finalize for the window starts that
    //     became final since the previous flush (the first flush of an Aggregator covers
    //     everything up to the watermark, since it cannot know what earlier runs marked);
    //   session: one DeleteRows (window_start, group_key) for stored rows that no longer stand
    //     for a session, and one UpsertRows of full rows (every column kSet) for the sessions
    //     that became final (`final` = 1) and, with `snapshotBatch`, for the open sessions
    //     changed since the previous snapshot (`final` = 0); with `snapshotBatch` also the
    //     snapshot: their states into session_snapshot_rows (and deletes of the states that no
    //     longer stand for an open session), and (name, *snapshotBatch, max event time) into
    //     session_snapshots. `snapshotBatch` is the batch whose transaction carries the output
    //     (or the last one committed, for a snapshot in a transaction of its own); it is ignored
    //     when no snapshot is pending (snapshotPending());
    // and for every shape the late counts per window for late_events and the max event time
    // for watermarks. Emits nothing at all when add() was not called since the previous flush
    // and no snapshot is written. Text and blob cells point into `arena`.
    FlushSummary flush(Arena& arena, WriteBatch& out, std::optional<uint64_t> snapshotBatch = std::nullopt);
    // Session windows: add() was called since the last snapshot, or no snapshot holds the
    // state yet. Always false for the other shapes.
    bool snapshotPending() const;
    // Session windows: no snapshot holds the state yet (a new aggregation, or sessions read back
    // with restoreOpenWindow()); the owner should write one at the next flush.
    bool snapshotDue() const;

    // Session windows keep their open sessions in snapshots. At start, when session_snapshots
    // has a row for the aggregation: restoreSnapshot() with its max_event_time (before any
    // setMaxEventTimeMs()), restoreSnapshotRow() with the state of each of its
    // session_snapshot_rows, then add() every event of the contract committed in a batch after
    // its batch_id, in commit order, calling replayed() every so often and at the end: the
    // state is then what it was when the last of those batches was committed (flush decisions
    // depend on the watermark only, not on where batches were cut). replayed() drops the
    // sessions that closed and the late counts, writing nothing (the replayed batches wrote them).
    // Fails on a state this aggregation could not have written.
    void restoreSnapshot(std::optional<int64_t> maxEventTimeMs);
    Status restoreSnapshotRow(std::string_view state);
    void replayed();
    // A database without a snapshot of the aggregation (written before snapshots existed) keeps
    // its open sessions as the rows of agg_<name> with final = 0: run this query (empty for the
    // shapes that keep nothing) and hand every row, in the table's column order, to
    // restoreOpenWindow(); the next flush should carry a snapshot (snapshotDue()). Fails on a
    // row this aggregation could not have written (a corrupt sketch, a missing column).
    std::string openWindowsQuery() const;
    Status restoreOpenWindow(std::span<const Cell> row);
    // A reload replaced the aggregation's definition with one of the same table (only
    // allowed_lateness or min_group_size changed): take over `previous`'s open windows, which
    // may include rows still in flight to the database. Returns false, taking nothing, when the
    // two do not share a table layout and window shape.
    bool adoptOpenWindows(Aggregator& previous);
    // Session windows held in memory (open, or final and not yet flushed).
    size_t openWindows() const;

    const AggregationTable& table() const { return table_; }
    const AggregatorCounters& counters() const { return counters_; }
    // (window, group) partials held for the current batch (tumbling and sliding).
    size_t pendingGroups() const { return partials_.size(); }

private:
    struct GroupValue {
        ValueKind kind = ValueKind::kMissing;
        int64_t i = 0;
        double d = 0;
        bool b = false;
        std::string text;
    };
    struct NumericState {
        __extension__ __int128 intSum = 0;  // integer fields: exact for any batch size
        double realSum = 0;                 // number fields
        int64_t present = 0;
        int64_t intMin = 0, intMax = 0;
        double realMin = 0, realMax = 0;
    };
    // The metrics of one window of one group.
    struct Accumulator {
        int64_t count = 0;
        std::vector<NumericState> numeric;  // parallel to table_.numericFields()
        std::vector<HyperLogLog> sketches;  // parallel to table_.distinctFields()
        SubjectSet subjects;
    };
    struct Partial {
        int64_t windowStart = 0;
        std::string groupKey;  // the group_key JSON array
        std::vector<GroupValue> groups;
        Accumulator acc;
    };
    struct KeyHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct Sessions;  // session windows' state, in aggregator.cpp

    Aggregator(AggregationTable table, int64_t latenessMs, ConsentMask consent,
               std::span<const uint8_t, kSipKeyBytes> hashKey);

    // One event's normalized values, computed once however many windows it joins.
    void prepareEvent(std::span<const Value> fields);
    void addPrepared(Accumulator& acc) const;
    void merge(Accumulator& into, const Accumulator& from) const;
    // count, metrics, subjects and their sketches into a row laid out like table_.columns().
    void writeMetrics(Accumulator& acc, Cell* row, Arena& arena);
    void writeGroups(const std::vector<GroupValue>& groups, Cell* row, Arena& arena) const;
    std::vector<GroupValue> groupValues() const;
    Status readMetrics(std::span<const Cell> row, Accumulator& acc) const;

    void addToWindows(int64_t eventTimeMs);
    void addToSession(int64_t eventTimeMs);
    Partial& partialFor(int64_t windowStart);
    // `rows` empty rows of agg_<name>, laid out like table().columns().
    UpsertRows tableRows(size_t rows) const;
    void flushWindows(Arena& arena, WriteBatch& out, FlushSummary& summary);
    // Without `out` (replayed()): the bookkeeping only, nothing written.
    void flushSessions(Arena* arena, WriteBatch* out, FlushSummary& summary, std::optional<uint64_t> snapshotBatch);
    Status restoreSession(std::span<const Cell> row, bool changed);

    AggregationTable table_;
    WindowKind kind_;
    int64_t sizeMs_;  // tumbling, sliding
    int64_t slideMs_;
    int64_t gapMs_;   // session
    int64_t latenessMs_;
    ConsentMask consentMask_;
    SipHash24 hash_;

    bool haveMax_ = false;
    int64_t maxEventTimeMs_ = 0;
    std::optional<int64_t> finalizedThrough_;  // the last window start a flush finalized
    bool dirty_ = false;                        // add() since the previous flush

    std::vector<Partial> partials_;
    // Key: the window start's 8 bytes followed by the group key JSON. Value: index in partials_.
    std::unordered_map<std::string, uint32_t, KeyHash, std::equal_to<>> index_;
    std::unique_ptr<Sessions> sessions_;
    std::map<int64_t, uint64_t> lateByWindow_;
    uint64_t lateSinceFlush_ = 0;
    AggregatorCounters counters_;

    // The event being added (prepareEvent): the group key JSON after 8 bytes kept for a window
    // start, the normalized group values (pseudonyms in pseudonyms_), metric values and hashes.
    std::string keyScratch_;
    std::vector<Value> groupScratch_;
    std::vector<std::string> pseudonyms_;
    std::vector<Value> numericScratch_;
    std::vector<std::optional<uint64_t>> distinctScratch_;
    std::optional<uint64_t> subjectScratch_;
    std::string hashScratch_;
    std::string blobScratch_;
};

}  // namespace sluice::aggregate
