// The single writer of the database: commits one WriteBatch per transaction, durably
// (WAL, synchronous=FULL), or nothing of it. Owned and called by one thread (the writer thread).
// With Options::syncEveryCommit false a commit is durable only once it was synced: the daemon
// syncs the WAL on a thread of its own before telling anyone of a commit (store/wal_sync.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/commit.h"
#include "core/schema.h"
#include "core/spec.h"
#include "core/status.h"
#include "store/checkpointer.h"
#include "store/cursor_mailbox.h"
#include "store/db.h"

namespace sluice::store {

// Sketch functions the writer registers as sluice_hll_merge(a, b), sluice_hll_estimate(a),
// sluice_subjects_merge(a, b) and sluice_subjects_count(a). store/ only calls them; aggregate/
// implements them. Either argument may be NULL (nullopt).
struct SketchFunctions {
    using Merge = std::function<Result<std::string>(std::optional<std::string_view>, std::optional<std::string_view>)>;
    Merge merge;
    std::function<Result<double>(std::optional<std::string_view>)> estimate;
    Merge subjectsMerge;
    std::function<Result<int64_t>(std::optional<std::string_view>)> subjectsCount;
};

struct CommitTiming {
    int64_t writeUs = 0;
    int64_t commitUs = 0;
};

class BatchWriter {
public:
    struct Options {
        std::string path;
        int64_t cacheBytes = 16 * 1024 * 1024;
        const char* vfs = nullptr;
        SketchFunctions sketches;
        bool syncEveryCommit = true;  // Db::Options::syncEveryCommit
        // Db::Options::syncNever, for the writer's connection: its commits and the checkpoints it
        // runs itself. A background checkpointer keeps synchronous=FULL, so its fsyncs write the
        // database back while the writer goes on.
        bool syncNever = false;
        // Checkpoint the WAL on a thread of its own (the daemon) instead of in the commit path.
        bool backgroundCheckpoints = false;
        bool rollbackJournal = false;  // Db::Options::rollbackJournal (without backgroundCheckpoints)
    };

    static Result<std::unique_ptr<BatchWriter>> open(const Options& options);

    Db& db() { return db_; }

    // Creates or checks the pipeline's tables and views and records the pipeline, in one
    // transaction. `tables` are the per-contract, per-output and per-aggregation tables.
    Status applySchema(const PipelineSpec& pipeline, const std::vector<TableDef>& tables, int64_t nowMs);

    // Writes the whole batch in one BEGIN IMMEDIATE transaction and commits it. On failure the
    // transaction is rolled back and the error says why; the caller must not acknowledge.
    // Key links shredded by another process since the last batch are appended to `shredded`
    // (their derived rows in this batch were dropped); the pipeline must forget those keys.
    Status commit(WriteBatch& batch, std::vector<std::string>& shredded, CommitTiming& timing);

    // The same transaction, written in parts while the batch is still being transformed
    // (core/commit.h): beginBatch() applies the first part's schema change and opens the
    // transaction (and reports keys shredded elsewhere, as commit() does), writePart() writes a
    // part's rows, keys, subject links and dead letters (setting each key's rowid), then its
    // aggregate deletes, upserts and finalizes (in that order, within the part),
    // commitBatch() writes the last part and the batch's end and commits. After a failure, or
    // to give the batch up, abortBatch() rolls everything of it back.
    Status beginBatch(const WriteBatch& first, std::vector<std::string>& shredded);
    Status writePart(WriteBatch& part);
    Status commitBatch(WriteBatch& last, CommitTiming& timing);
    // A WriteBatch with stateOnly set (a session snapshot at shutdown): its deletes and upserts
    // in a transaction of their own, between batches.
    Status commitState(WriteBatch& state);
    void abortBatch();
    bool batchOpen() const { return txn_.has_value(); }

    // Exporter cursors (store/cursor_mailbox.h): each batch's transaction writes what was posted
    // since the last. commitCursors() writes them in a transaction of their own, between batches
    // (the writer calls it when no batch came for a while); closeCursors() writes the rest (not
    // after a fault: `write` false) and closes the mailbox (the writer's end). `mailbox`
    // outlives the writer.
    void setCursorMailbox(CursorMailbox* mailbox) { cursors_ = mailbox; }
    Status commitCursors();
    Status closeCursors(bool write);

    Result<uint64_t> lastBatchId();

private:
    explicit BatchWriter(Db db) : db_(std::move(db)) {}
    Result<Stmt*> insertFor(const std::string& table);
    Result<Stmt*> upsertFor(const UpsertRows& rows);
    Result<Stmt*> deleteFor(const DeleteRows& rows);
    Status checkShredded(uint64_t batchId, std::unordered_set<std::string>& dropped, std::vector<std::string>& shredded);
    Status writeInserts(WriteBatch& batch, const std::unordered_set<std::string>& dropped);
    Status writeKeysAndRejects(WriteBatch& batch);
    Status writeAggregates(WriteBatch& part);
    Status writeBatchEnd(WriteBatch& batch);
    Status fillDuplicateOutcomes(WriteBatch& batch);
    // Appends "table first last\n" to the batch's row_ranges (store/committed_reader.h reads it).
    void addRowRange(std::string_view table, int64_t first, int64_t last);
    std::string rowRangesText() const;
    // Tells the cursor mailbox how the transaction that wrote its positions ended.
    void settleCursors(bool committed);

    Db db_;  // declared first: statements are finalized before the connection closes
    std::unordered_map<std::string, std::vector<std::string>> insertColumns_;
    std::unordered_map<std::string, std::vector<size_t>> insertCells_;  // TableDef::insertCells
    std::unordered_map<std::string, Stmt> inserts_;
    std::unordered_map<std::string, Stmt> upserts_;
    std::unordered_map<std::string, Stmt> deletes_;
    struct FinalizeStmts {
        Stmt update;
        Stmt span;  // the window starts an update is about to make final
    };
    std::unordered_map<std::string, FinalizeStmts> finalizes_;
    std::vector<std::tuple<std::string, int64_t, int64_t>> rowRanges_;  // of the batch being written
    Stmt batchInsert_, keyInsert_, subjectInsert_, rejectInsert_, markInsert_, markLookup_, producerUpsert_;
    std::unique_ptr<Checkpointer> checkpointer_;  // after db_: stopped before the connection closes
    // The batch being written (beginBatch .. commitBatch).
    std::optional<Txn> txn_;
    std::unordered_set<std::string> dropped_;  // its derived rows under these key links are dropped
    int64_t batchWriteUs_ = 0;                 // time in its statements so far
    int64_t dataVersion_ = -1;
    int64_t lastShredId_ = 0;
    // Key links shredded by another process, with the batch that noticed them. Batches already
    // transformed with such a key are still in the pipeline for a few batches after the notice.
    std::unordered_map<std::string, uint64_t> recentShreds_;
    SketchFunctions sketches_;
    CursorMailbox* cursors_ = nullptr;
    bool cursorsTaken_ = false;  // the open transaction wrote the mailbox's positions
};

// What the writer uses to merge an Aggregator's output, for other writers of aggregate rows
// (sluicectl reprocess). registerSketchFunctions adds sluice_hll_merge, sluice_hll_estimate,
// sluice_subjects_merge and sluice_subjects_count to `db` (`functions` must outlive it);
// upsertSql is the INSERT ... ON CONFLICT statement for `rows` (the MergeOps of docs/aggregation.md);
// runPerRow runs `stmt` once per row of `cells` (`width` parameters each).
Status registerSketchFunctions(Db& db, const SketchFunctions& functions);
std::string upsertSql(const UpsertRows& rows);
Status runPerRow(Stmt& stmt, const std::vector<Cell>& cells, size_t width, const std::string& context);

}  // namespace sluice::store
