// The unit of commit: everything one batch writes, in one SQLite transaction. The pipeline
// builds it; store/ writes it without interpreting events; ingest/ turns its outcomes into
// acknowledgements once it is durable. Text cells point into `arena`, which travels with it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/arena.h"
#include "core/batch.h"
#include "core/reason.h"
#include "core/schema.h"
#include "core/spec.h"

namespace sluice {

// One value of a row: 16 bytes, because a batch holds hundreds of thousands of them.
struct Cell {
    enum class Kind : uint8_t { kNull, kInt, kReal, kText, kBlob };

    static Cell null() { return {}; }
    static Cell ofInt(int64_t v) { Cell c; c.kind = Kind::kInt; c.value_.i = v; return c; }
    static Cell ofReal(double v) { Cell c; c.kind = Kind::kReal; c.value_.d = v; return c; }
    static Cell ofText(std::string_view v) { return bytes(Kind::kText, v); }
    static Cell ofBlob(std::string_view v) { return bytes(Kind::kBlob, v); }

    // The value for its kind; 0 or empty for the other kinds.
    int64_t i() const { return kind == Kind::kInt ? value_.i : 0; }
    double d() const { return kind == Kind::kReal ? value_.d : 0.0; }
    std::string_view text() const
    {
        return kind == Kind::kText || kind == Kind::kBlob ? std::string_view(value_.p, size_) : std::string_view();
    }

    Kind kind = Kind::kNull;

private:
    static Cell bytes(Kind kind, std::string_view v)
    {
        Cell c;
        c.kind = kind;
        c.value_.p = v.data() ? v.data() : "";
        c.size_ = static_cast<uint32_t>(v.size());
        return c;
    }

    uint32_t size_ = 0;
    union {
        int64_t i;
        double d;
        const char* p;
    } value_{0};
};
static_assert(sizeof(Cell) == 16);

// Rows appended to one table; `width` cells per row, row-major, in the table's column order.
struct TableRows {
    std::string table;
    size_t width = 0;
    std::vector<Cell> cells;
    // When >= 0, column `parentColumn` of each row holds an index into the rows of
    // inserts[parent]; the writer replaces it with that row's rowid (derived row -> its event).
    int parent = -1;
    int parentColumn = -1;
    // Derived rows hold plaintext: when their key was shredded while the batch was in flight
    // (sluicectl forget), the writer drops them. keyLinkColumn says where the key link is.
    int keyLinkColumn = -1;
    bool dropIfKeyShredded = false;

    size_t rows() const { return width ? cells.size() / width : 0; }
    Cell* addRow()
    {
        cells.resize(cells.size() + width);
        return cells.data() + cells.size() - width;
    }
};

// How an upsert merges a column into an existing row.
enum class MergeOp : uint8_t {
    kKey,          // part of the conflict target
    kAdd,          // old + new
    kMin,          // the smaller; NULL counts as absent
    kMax,          // the larger; NULL counts as absent
    kSet,          // new replaces old
    kHllMerge,     // sketch union: sluice_hll_merge(old, new)
    kHllEstimate,  // the estimate of the merged sketch in column `source`
    kSubjectsMerge,  // subject set union: sluice_subjects_merge(old, new)
    kSubjectsCount,  // the count of the merged subject set in column `source`
    kKeep,         // written on insert only
};

struct UpsertColumn {
    std::string name;
    MergeOp op = MergeOp::kSet;
    int source = -1;  // kHllEstimate, kSubjectsCount: index of the sketch or set column
};

struct UpsertRows {
    std::string table;
    std::vector<UpsertColumn> columns;
    std::vector<Cell> cells;  // columns.size() cells per row

    size_t rows() const { return columns.empty() ? 0 : cells.size() / columns.size(); }
};

// Deletes the rows of `table` whose key columns equal one row of `cells` (keyColumns.size()
// cells per row). The writer applies deletes before the upserts of the same batch.
struct DeleteRows {
    std::string table;
    std::vector<std::string> keyColumns;
    std::vector<Cell> cells;

    size_t rows() const { return keyColumns.empty() ? 0 : cells.size() / keyColumns.size(); }
};

// Sets `final = 1` on rows of `table` whose window_start lies in [fromMs, toMs].
struct Finalize {
    std::string table;
    int64_t fromMs = 0;
    int64_t toMs = 0;
};

using Digest = std::array<uint8_t, 32>;

struct KeyRecord {
    std::string keyLink;     // UUID text
    uint32_t keyId = 0;
    std::string contract;    // ref, or "" for a dead-letter key
    std::string kind;        // "data" or "dead_letter"
    Digest lookup{};         // keyed hash of the key-field value (or of the day, dead letters)
    std::string wrapped;     // nonce || AES-256-GCM(master, key) || tag
    int64_t createdAtMs = 0;
    int64_t expiresAtMs = 0;
    int64_t rowid = 0;       // set by the writer once stored
};

struct KeySubject {
    std::string keyLink;
    Digest subject{};        // keyed hash of the data subject value
};

struct DeadLetter {
    Reason reason = Reason::kNotJson;
    int64_t receivedAtMs = 0;
    std::string producer;        // acknowledged requests only
    int64_t seq = -1;            // -1: none
    std::string message;         // never contains field values
    uint32_t requestIndex = 0;
    int32_t eventIndex = -1;     // -1: the whole message
    std::string contract;        // when known
    std::string eventId;         // when known
    std::string input;           // the capped copy, encrypted under `inputKeyLink`
    std::string inputKeyLink;
    uint32_t inputBytes = 0;     // size of the original input
};

struct ProducerMark {
    std::string producer;
    uint64_t seq = 0;
    uint32_t accepted = 0;
    uint32_t rejected = 0;
};

// One event refused inside an acknowledged request, as the producer is told.
struct EventError {
    uint32_t index = 0;  // position among the request's non-blank lines, from 0
    Reason reason = Reason::kNotJson;
    std::string message;
};

// What an acknowledged request's reply says.
struct RequestOutcome {
    std::string routingId;
    bool reqEnvelope = false;
    std::string producer;
    uint64_t seq = 0;
    RequestState state = RequestState::kNew;
    Reason rejectReason = Reason::kBadRequest;  // state == kRejected
    std::string rejectMessage;
    uint32_t accepted = 0;
    uint32_t rejected = 0;
    std::vector<EventError> errors;
    int64_t receivedMonoNs = 0;

    // The reply-relevant part of a request; counts and errors are filled in by the processor.
    static RequestOutcome of(const Request& r)
    {
        RequestOutcome o;
        o.routingId = r.routingId;
        o.reqEnvelope = r.reqEnvelope;
        o.producer = r.producer;
        o.seq = r.seq;
        o.state = r.state;
        o.rejectReason = r.rejectReason;
        o.rejectMessage = r.rejectMessage;
        o.receivedMonoNs = r.receivedMonoNs;
        return o;
    }
};

// Time spent on a batch per stage, in microseconds (the per-stage profile).
struct StageTimes {
    int64_t queuedUs = 0;     // from close to the start of processing
    int64_t parseUs = 0;      // parse and validate (wall time of the parallel phase)
    int64_t transformUs = 0;  // keys, encryption, derived rows
    int64_t aggregateUs = 0;
    int64_t writeUs = 0;      // statements inside the transaction
    int64_t commitUs = 0;     // COMMIT (the fsync)
};

struct BatchRecord {
    uint64_t id = 0;
    int64_t openedAtMs = 0;
    int64_t closedAtMs = 0;
    CloseReason closeReason = CloseReason::kDelay;
    uint32_t requests = 0;
    uint64_t received = 0;
    uint64_t committed = 0;
    uint64_t duplicates = 0;
    uint64_t rejected = 0;
    uint64_t bytes = 0;
    uint32_t keysCreated = 0;
    int64_t closedMonoNs = 0;
    // Monotonic times of the batch after its close, for the latency accounting: the processor
    // finished its tail, the writer's COMMIT returned (0 where not measured).
    int64_t transformedMonoNs = 0;
    int64_t committedMonoNs = 0;
};

// A configuration change that applies from this batch on: the writer creates or checks its
// tables before writing the batch.
struct SchemaChange {
    PipelinePtr pipeline;
    std::vector<TableDef> tables;
};

// A batch is written in one transaction, either whole (opensBatch and closesBatch both set) or
// in parts as it is transformed: the first part opens the transaction, the last one (with the
// batch record, replies and marks) commits it. Any part may carry rows, keys, subject links,
// dead letters and aggregate instructions; the writer applies a part's deletes, upserts and
// finalizes in that part, in that order, so the instructions of one Aggregator::flush() must
// travel in one part (today the Transformer flushes once, into the last part).
struct WriteBatch {
    bool opensBatch = true;
    bool closesBatch = true;
    // Not a batch: aggregation state (a session snapshot at shutdown) that the writer commits in
    // a transaction of its own, with deletes and upserts only; record.id is the last batch
    // committed before it, which it covers.
    bool stateOnly = false;
    BatchRecord record;
    StageTimes times;
    std::shared_ptr<const SchemaChange> schema;  // null: same configuration as the batch before
    std::vector<Arena> arenas;                   // own every byte the cells below point to
    std::vector<TableRows> inserts;
    std::vector<DeleteRows> deletes;  // before the upserts
    std::vector<UpsertRows> upserts;
    std::vector<Finalize> finalizes;
    std::vector<KeyRecord> keys;
    // Rowids of stored keys this batch used for the first time since the Transformer was made
    // (TransformOptions::reportKeyFirstUses, batch jobs); empty otherwise.
    std::vector<int64_t> keysFirstUsed;
    std::vector<KeySubject> subjects;
    std::vector<DeadLetter> deadLetters;
    std::vector<ProducerMark> marks;
    std::vector<RequestOutcome> outcomes;  // acknowledged requests, in arrival order
    std::array<uint64_t, kReasonCount> rejectedByReason{};
    uint64_t lateEvents = 0;                                          // summed over aggregations
    std::vector<std::pair<std::string, uint64_t>> lateByAggregation;  // (name, late events), non-zero only
};

}  // namespace sluice
