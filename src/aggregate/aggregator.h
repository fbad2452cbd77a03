// The partial aggregates of one aggregation over one batch, and the event-time bookkeeping
// (watermark, late events, final windows) that decides what they may change.
//
// Per batch: add() every event of the aggregation's contract that the batch commits, in
// arrival order; then flush() into the batch's WriteBatch. The writer applies the upserts
// (merging partials into agg_<name>, late_events and watermarks) and then the finalizes, all in
// the batch's transaction. If that transaction does not commit, this object no longer matches
// the database: rebuild it (create() + setMaxEventTimeMs() from the watermarks table).
//
// One thread calls add() and flush(); counters() may be read by that thread only.
#pragma once

#include <cstdint>
#include <map>
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
    uint64_t aggregated = 0;  // events added to a partial
    uint64_t late = 0;        // events for a window that was already final
    uint64_t filtered = 0;    // events without the consent the aggregation requires
    uint64_t outOfRange = 0;  // event time outside [kMinEventTimeMs, kMaxEventTimeMs]: ignored
};

// What one flush() emitted.
struct FlushSummary {
    size_t groupRows = 0;       // rows upserted into agg_<name>
    uint64_t lateEvents = 0;    // late events counted since the previous flush
    bool finalized = false;     // a Finalize was emitted
};

class Aggregator {
public:
    // Fails like checkAggregation(). `hashKey` keys the hash of distinct values; it must be the
    // same for every run that merges into the same database, or sketches stop matching.
    static Result<Aggregator> create(const AggregationSpec& spec, const ContractSpec& contract,
                                     std::span<const uint8_t, kSipKeyBytes> hashKey);

    // Restores the contract's largest event time seen (the watermarks table) at startup.
    // Never lowers it.
    void setMaxEventTimeMs(int64_t ms);
    std::optional<int64_t> maxEventTimeMs() const;
    // maxEventTime - allowed_lateness: windows ending at or before it are final.
    std::optional<int64_t> watermarkMs() const;

    // One event of the contract. `fields` is indexed like ContractSpec::fields (kMissing when
    // absent; a shorter span reads as missing). Every in-range event moves the max event time,
    // whether or not it passes the consent filter; one that passes is LATE if its window ended
    // at or before the watermark as it was before this event, else it goes into its
    // (window, group) partial. Metrics other than count skip missing values, NaN, infinities
    // and values of the wrong kind. Never fails; allocates only for a new group, a new late
    // window or a growing sketch.
    void add(int64_t eventTimeMs, ConsentMask consent, std::span<const Value> fields);

    // Appends this batch's output and starts the next batch: the partial rows (sorted by window
    // and group key) as one UpsertRows for agg_<name> with table().columns(); the late counts
    // per window for late_events; the max event time for watermarks; and one Finalize for the
    // window starts that became final since the previous flush (the first flush of an
    // Aggregator covers everything up to the watermark, since it cannot know what earlier runs
    // marked). Emits nothing at all when add() was not called since the previous flush. Text
    // and blob cells point into `arena`.
    FlushSummary flush(Arena& arena, std::vector<UpsertRows>& upserts, std::vector<Finalize>& finalizes);

    const AggregationTable& table() const { return table_; }
    const AggregatorCounters& counters() const { return counters_; }
    // (window, group) partials held for the current batch.
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
    struct Partial {
        int64_t windowStart = 0;
        std::string groupKey;  // the group_key JSON array
        std::vector<GroupValue> groups;
        int64_t count = 0;
        std::vector<NumericState> numeric;  // parallel to table_.numericFields()
        std::vector<HyperLogLog> sketches;  // parallel to table_.distinctFields()
        SubjectSet subjects;
    };
    struct KeyHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };

    Aggregator(AggregationTable table, int64_t latenessMs, ConsentMask consent,
               std::span<const uint8_t, kSipKeyBytes> hashKey);

    Partial& partialFor(int64_t windowStart, std::span<const Value> fields);
    void addMetrics(Partial& p, std::span<const Value> fields);

    AggregationTable table_;
    int64_t widthMs_;
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
    std::map<int64_t, uint64_t> lateByWindow_;
    uint64_t lateSinceFlush_ = 0;
    AggregatorCounters counters_;

    std::string keyScratch_;
    std::string hashScratch_;
    std::string blobScratch_;
};

}  // namespace sluice::aggregate
