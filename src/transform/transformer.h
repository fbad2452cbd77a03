// The privacy transform as a library: parsed events in, one WriteBatch out (event rows with every
// PII field encrypted, derived rows with consented plaintext and masks, new keys, subject links,
// dead letters, aggregate upserts and finalizes, producer marks and replies). The daemon's
// processor thread and `sluicectl job` both drive it; it has no threads, queues, database paths
// or exits of its own. What differs between them is injected (Parts): the executor its parallel
// phases run on, where committed keys come from, and the key policy.
//
// A batch is begin(), any number of add calls in arrival order, then finish():
//
//   A  parse + validate   every lane parses its contiguous part of the input (JSON lines of
//      (parallel)         requests, or whatever a ParseTask reads); each valid event's key
//                         lookup hash picks its shard (one shard per lane)
//   S  plan (in order)    rows are numbered, rejects become dead letters and reply entries,
//                         derived rows are assigned by consent
//   B  transform          lane i handles the events of shard i: keys (its own KeyCache, no
//      (parallel)         locks), AES-SIV of every PII field, derived rows, masking
//   C  aggregate (order)  every committed event, in arrival order, into the aggregators
//
// finish() flushes the aggregators and hands over the WriteBatch. Lanes write disjoint slots of
// preallocated rows, so the per-event path takes no lock.
//
// Between batches the owner passes on what the store reports (keysStored, keysShredded) and may
// switch the configuration (setPipeline). A failed add or finish leaves the batch unusable and
// the aggregators ahead of the database: the owner must not commit anything of it, and must
// build a new Transformer (from the database's state) before transforming anything else.
//
// Not thread-safe: one thread calls every method; the executor's lanes run inside it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "contract/validator.h"
#include "core/arena.h"
#include "core/batch.h"
#include "core/clock.h"
#include "core/commit.h"
#include "core/status.h"
#include "privacy/key_wrap.h"
#include "transform/db_key_source.h"
#include "transform/db_open_windows.h"
#include "transform/executor.h"
#include "transform/key_policy.h"
#include "transform/pipeline_runtime.h"

namespace sluice::transform {

struct TransformOptions {
    contract::Limits limits;
    size_t keyCacheEntries = 150'000;  // unwrapped data keys held in memory, over all lanes
    // Keys in the directory over all lanes, when the key policy's lookup fixes the term (a
    // job's day keys): the terms used least recently leave it (KeyCache::partitionByTerm).
    // 0: every active key, read at start (the daemon).
    size_t keyDirectoryEntries = 0;
    // Bytes of a rejected event's input kept (encrypted under a per-day dead-letter key) in its
    // dead letter. 0: none, and no dead-letter key is ever made.
    uint64_t deadLetterInputBytes = 4096;
    // List in WriteBatch::keysFirstUsed the stored keys each batch uses for the first time (a
    // batch job's keys output needs every key it used, not only the new ones).
    bool reportKeyFirstUses = false;
    // Session windows write their open sessions (a snapshot) in the first batch this long after
    // the previous snapshot; 0: every batch (pipeline.session_snapshot_interval). A batch also
    // takes one after keys were shredded, and a new session aggregation's first batch does.
    int64_t sessionSnapshotIntervalMs = 30'000;
};

// Where an event came from. For requests: the request's index in the batch and the line's
// index among its non-blank lines. A ParseTask chooses its own (a job: file and row).
struct Origin {
    uint32_t unit = 0;
    uint32_t index = 0;
    int64_t receivedAtMs = 0;
};

// The key caches of all lanes, summed.
struct KeyCacheCounts {
    size_t resident = 0;
    uint64_t loads = 0;
    uint64_t termsRead = 0;     // TransformOptions::keyDirectoryEntries: terms read into the directory
    uint64_t termsDropped = 0;  // ... and dropped from it again
};

class Transformer {
public:
    struct Parts {
        Executor& executor;
        const privacy::KeyWrapper& wrapper;
        const KeyPolicy& keyPolicy;
        KeySourceFactory keySources;  // called once per lane, and once for the dead-letter keys
        const Clock& clock;
        // Reads a new aggregation's open windows back (session windows keep them in the
        // database); without it every aggregation starts with none.
        OpenWindowsReader openWindows = {};
    };

    // What a ParseTask gets on each lane.
    class Lane {
    public:
        int index() const { return index_; }
        // Parsed values (plaintext PII among them) live here until the batch is finished.
        Arena& arena();
        // A JSON validator over the current configuration's contracts.
        contract::Validator& validator();
        const contract::ContractSet& contracts() const;
        // The wall-clock time of this add call.
        int64_t nowMs() const;
        // A valid event; its fields point into arena(). `text` is kept for nothing.
        void accept(const contract::ParsedEvent& event, const Origin& origin);
        // A refused event; `text` (its input) is copied, capped and encrypted into its dead letter.
        void reject(contract::Rejection&& why, const Origin& origin, std::string_view text);

    private:
        friend class Transformer;
        Lane(Transformer& t, int index) : t_(t), index_(index) {}
        Transformer& t_;
        int index_;
    };
    // Parses one lane's part of the input. Lane k's events come after lane k-1's in arrival order.
    using ParseTask = std::function<void(Lane& lane)>;

    // `watermarks`: the contracts' largest event times so far (the database's watermarks table).
    static Result<std::unique_ptr<Transformer>> create(TransformOptions options, Parts parts,
                                                       std::shared_ptr<const PipelineRuntime> pipeline,
                                                       const std::vector<std::pair<std::string, int64_t>>& watermarks);
    ~Transformer();
    Transformer(const Transformer&) = delete;
    Transformer& operator=(const Transformer&) = delete;

    // Between batches. A new configuration applies from the next batch; aggregations whose
    // definition did not change keep their state. On failure the old configuration stays.
    Status setPipeline(std::shared_ptr<const PipelineRuntime> pipeline);
    const std::shared_ptr<const PipelineRuntime>& pipeline() const;
    // The store committed these new keys (their rowids set): they may leave memory from now on.
    void keysStored(const std::vector<KeyRecord>& keys);
    // These keys were shredded (forget, retention): no later event may use them.
    void keysShredded(const std::vector<std::string>& keyLinks);

    // One batch.
    void begin(uint64_t batchId, int64_t openedAtMs);
    // Requests as the ingest stage classified them (new, duplicate, refused as a whole): events
    // of new requests are parsed from their JSON lines; acknowledged requests get a reply and
    // (new ones) a producer mark. The requests need to stay alive only during the call.
    Status addRequests(std::span<const Request> requests);
    // Events parsed by `task` on every lane.
    Status addParsed(const ParseTask& task);
    // What the adds since the previous part produced, to be written ahead of the batch's end
    // (store::BatchWriter::writePart): event and derived rows (numbered within the part), new
    // keys, subject links, dead letters and the arenas they point into; the schema change if
    // the batch carries one and no part had it yet. opensBatch is set on the batch's first part;
    // closesBatch is never set. Counts, replies, marks and aggregates stay with the batch.
    WriteBatch takePart();
    // Whether takePart() would hand anything on.
    bool hasPart() const;
    // Flushes the aggregators and returns the batch's end: whatever rows no part took, the
    // batch record (`close` supplies its close time, reason and byte count; the counts are the
    // whole batch's), replies, producer marks and aggregate upserts. closesBatch is set, and
    // opensBatch when no part went before it.
    Result<WriteBatch> finish(const BatchRecord& close);
    // Between batches (a clean shutdown): a snapshot of every session aggregation's open
    // sessions not yet in one, covering the last batch finished, as a WriteBatch with
    // stateOnly set (the writer commits it in a transaction of its own); nullopt when there is
    // nothing to write. After it, the owner may only destroy the Transformer or go on as usual.
    std::optional<WriteBatch> snapshotSessions();
    // begin() + addRequests(all) + finish(): a closed batch in one call.
    Result<WriteBatch> transform(Batch&& batch);

    KeyCacheCounts keyCounts() const;

private:
    struct Impl;
    explicit Transformer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::transform
