// Reading what the daemon committed, batch by batch, for exporters: the batches after a cursor,
// the rows each wrote (events, derived rows, the windows it made final, keys) and the shredding
// recorded since; and the exporters' cursors, kept in the database.
//
// Each batch records where its rows went (batches.row_ranges, written by the BatchWriter in the
// batch's own transaction): the reader fetches a batch's rows by rowid range, so reading needs no
// index and no scan. A range is filtered by batch id as well: rowids of a table whose last rows
// were deleted (derived rows of a forgotten subject) are used again by later batches.
//
// Snapshots are short on purpose: a reader holds a read transaction only between begin() and
// end() (a long one would hold back WAL checkpoints and the truncation that forgetting needs).
// One CommittedReader per thread, on a connection of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/commit.h"
#include "core/spec.h"
#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

// Rows one batch wrote to one table: rowids first..last, or for an aggregation table the window
// starts (ms) of the windows the batch made final.
struct RowRange {
    std::string table;
    int64_t first = 0;
    int64_t last = 0;
};

struct CommittedBatch {
    uint64_t id = 0;
    int64_t committedAtMs = 0;
    std::vector<RowRange> ranges;

    const RowRange* range(std::string_view table) const;
};

// Parses batches.row_ranges ("table first last" per line). Malformed lines are skipped.
std::vector<RowRange> parseRowRanges(std::string_view text);

// One row as read: column names and values, valid only during the callback.
struct RowView {
    const std::vector<std::string>& names;
    const std::vector<Cell>& cells;
};

// What a row query selects. Parameters ?1 and ?2 are the range, ?3 the batch id.
struct RowQuery {
    std::string sql;
    // The rows of an events table the batch inserted, by rowid (seq), in order.
    static RowQuery tableRows(const std::string& table);
    // The same for a derived table, with the columns it shares with its event row read from
    // there (store::derivedRowsSql()): the columns an events table has, after event_seq.
    static RowQuery derivedRows(const OutputSpec& output, const ContractSpec& contract,
                                const std::vector<bool>& ownFields);
    // The final windows of an aggregation, from its analyst view (so groups smaller than
    // min_group_size stay hidden), window starts in the batch's range.
    static RowQuery finalWindows(const std::string& view);
    // The data keys the batch created: id, key_link, key_id, contract, wrapped, created_at, expires_at.
    static RowQuery dataKeys();
};

struct ShredEntry {
    int64_t id = 0;
    int64_t atMs = 0;
    std::string cause;  // "forget" or "retention"
    std::vector<std::string> keyLinks;
};

class CommittedReader {
public:
    static Result<CommittedReader> open(const std::string& path);

    // A read snapshot: everything read until end() sees the same committed state.
    Status begin();
    void end();

    Result<uint64_t> lastBatchId();
    // Up to `limit` batches with id > `after`, in id order.
    Result<std::vector<CommittedBatch>> batchesAfter(uint64_t after, size_t limit);
    // The rows `query` selects for `range` of `batch`, in order.
    Status forEachRow(const RowQuery& query, uint64_t batch, const RowRange& range,
                      const std::function<void(const RowView&)>& fn);
    // How many rows of `table` (an events or derived table) `batch` wrote in `range`.
    Result<int64_t> countRows(uint64_t batch, const RowRange& range);
    // shred_log entries with id > `after`, at most `limit`.
    Result<std::vector<ShredEntry>> shredsAfter(int64_t after, size_t limit);
    Result<int64_t> lastShredId();

    Db& db() { return db_; }

private:
    CommittedReader() = default;
    // The one integer `sql` selects (a max(id)); 0 when it is NULL.
    Result<int64_t> queryId(const std::string& sql);

    Db db_;  // first: statements are finalized before the connection closes
    StatementCache statements_;
    std::vector<std::string> names_;
    std::vector<Cell> cells_;
    bool open_ = false;
};

// An exporter's position: every batch up to `batchId` and every shredding up to `shredId` is
// durable in its sink. `state` is the sink's own (e.g. Kafka partition counts).
struct ExportCursor {
    uint64_t batchId = 0;
    int64_t shredId = 0;
    std::string state;
};

// On a writable connection of the exporter's own (synchronous=NORMAL is enough: a cursor that
// falls back after a power loss is corrected from the sink at start).
Result<std::optional<ExportCursor>> loadCursor(Db& db, std::string_view exporter);
Status saveCursor(Db& db, std::string_view exporter, const ExportCursor& cursor, int64_t nowMs);
// Every exporter's cursor, by name (sluicectl status).
Result<std::vector<std::pair<std::string, ExportCursor>>> loadCursors(Db& db);

}  // namespace sluice::store
