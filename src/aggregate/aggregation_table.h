// The SQL shape of one aggregation: the columns of its agg_<name> table (and how the writer
// merges each into an existing row), the CREATE statements of that table and of the analyst's
// view, and the shared late_events and watermarks tables. Pure strings: store/ executes them.
// docs/aggregation-notes.md describes the layout.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/commit.h"
#include "core/schema.h"
#include "core/spec.h"
#include "core/status.h"

namespace sluice::aggregate {

// A group_by field: its typed column holds the group's value, NULL when the field is missing.
struct GroupColumn {
    std::string field;
    int fieldIndex = -1;  // into ContractSpec::fields
    FieldType type = FieldType::kString;
    int column = -1;      // into AggregationTable::columns()
    // A PII field (session windows only): its column holds a keyed pseudonym of the value, 16
    // hex digits, never the value.
    bool pseudonym = false;
};

// An integer or number field used by sum, avg, min or max. Columns it does not need are -1.
struct NumericField {
    std::string field;
    int fieldIndex = -1;
    bool integer = false;  // an integer field: exact int64 sums, INTEGER min/max
    int sumColumn = -1;    // sum_f and n_f (the number of events where f was present), together
    int countColumn = -1;
    int minColumn = -1;
    int maxColumn = -1;
};

// A field counted by distinct(f): sketch column hll_f and estimate column distinct_f.
struct DistinctField {
    std::string field;
    int fieldIndex = -1;
    FieldType type = FieldType::kString;
    int sketchColumn = -1;
    int estimateColumn = -1;
};

inline constexpr const char* kCompleteSqlType = "INTEGER NOT NULL DEFAULT 0";

class AggregationTable {
public:
    static constexpr int kWindowStartColumn = 0;
    static constexpr int kGroupKeyColumn = 1;

    // Validates (see checkAggregation) and lays out the table.
    static Result<AggregationTable> create(const AggregationSpec& spec, const ContractSpec& contract);

    const std::string& name() const { return name_; }
    const std::string& tableName() const { return tableName_; }
    const std::string& contract() const { return contract_; }
    WindowKind window() const { return window_; }
    // Tumbling and sliding: the window's size, and how far apart windows start (the size again
    // for tumbling windows). Session: the largest gap between two events of one session.
    int64_t windowMs() const { return windowMs_; }
    int64_t slideMs() const { return slideMs_; }
    int64_t gapMs() const { return gapMs_; }

    // In table order: window_start, group_key, window_end (session windows only), the group
    // columns, count, the metric columns (sum_f, n_f, min_f, max_f, distinct_f in the order the
    // metrics first name them), subjects, final, then the hll_f sketches and subject_set last,
    // so that reading any other column never has to follow a blob's overflow pages. Tumbling
    // and sliding windows merge partial rows (add, min, max, sketch unions); session rows are
    // written whole, so every column but the key is kSet.
    const std::vector<UpsertColumn>& columns() const { return columns_; }
    const std::vector<GroupColumn>& groups() const { return groups_; }
    const std::vector<NumericField>& numericFields() const { return numeric_; }
    const std::vector<DistinctField>& distinctFields() const { return distinct_; }
    // Session windows: window_end, the last event's time + gap (-1 for the other shapes, whose
    // windows end at window_start + size).
    int windowEndColumn() const { return windowEndColumn_; }
    int countColumn() const { return countColumn_; }
    int finalColumn() const { return finalColumn_; }
    // k-anonymity: `subjects` (the count) and `subject_set` (the SubjectSet blob).
    int subjectsColumn() const { return subjectsColumn_; }
    int subjectSetColumn() const { return subjectSetColumn_; }
    // The field whose distinct values are the group's people: the contract's
    // data_subject_field, or its key_field when it names none; -1 when the contract has neither.
    int subjectFieldIndex() const { return subjectFieldIndex_; }
    const std::string& subjectField() const { return subjectField_; }
    bool subjectIsKeyField() const { return subjectIsKeyField_; }
    int minGroupSize() const { return minGroupSize_; }

    // CREATE TABLE IF NOT EXISTS "agg_<name>" (...): primary key (window_start, group_key);
    // WITHOUT ROWID unless the table holds sketches (rows of several KiB). After `final` comes
    // `complete` (kCompleteSqlType), which is not among columns(): the stream never writes it
    // (0), `sluicectl reprocess --complete` sets it to 1 on the windows it recomputed.
    std::string createTableSql() const;
    // Session windows: a partial index of the open rows (final = 0), which a restart reads back.
    std::vector<std::string> createIndexSql() const;
    // CREATE VIEW IF NOT EXISTS "<name>": ISO-8601 window_start and window_end, window_start_ms
    // (and window_end_ms for sessions), the group columns, the requested metrics under
    // MetricSpec::column() names, final; groups with fewer than min_group_size distinct
    // subjects are left out.
    std::string createViewSql() const;
    // The older layouts of this table that applyTable may bring to this one: the layout before
    // the `complete` column (any shape), and the layout of sluice before k-anonymity counted
    // people (tumbling only: no subjects and subject_set columns; their rows count no subjects,
    // so they stay hidden until reprocessed).
    std::vector<TableUpgrade> upgrades() const;
    // The table, its view and its upgrades, for store/.
    TableDef tableDef() const;

private:
    void addColumn(std::string name, MergeOp op, std::string sqlType);
    std::string createTableSql(bool withSubjects, bool withComplete) const;

    std::string name_;
    std::string tableName_;
    std::string contract_;
    WindowKind window_ = WindowKind::kTumbling;
    int64_t windowMs_ = 0;
    int64_t slideMs_ = 0;
    int64_t gapMs_ = 0;
    int minGroupSize_ = 1;
    std::vector<MetricSpec> metrics_;
    std::vector<UpsertColumn> columns_;
    std::vector<std::string> sqlTypes_;  // per column, with constraints
    std::vector<GroupColumn> groups_;
    std::vector<NumericField> numeric_;
    std::vector<DistinctField> distinct_;
    int windowEndColumn_ = -1;
    int countColumn_ = -1;
    int finalColumn_ = -1;
    int subjectsColumn_ = -1;
    int subjectSetColumn_ = -1;
    int subjectFieldIndex_ = -1;
    std::string subjectField_;
    bool subjectIsKeyField_ = false;
};

// Whether `spec` is a valid aggregation over `contract`; the message names the aggregation and
// the field. Used by config validation; AggregationTable::create and Aggregator::create apply
// the same rules.
Status checkAggregation(const AggregationSpec& spec, const ContractSpec& contract);

// Tables shared by all aggregations. Late events per aggregation and window:
//   late_events(aggregation TEXT, window_start INTEGER, events INTEGER,
//               PRIMARY KEY(aggregation, window_start))
// and the largest event time seen per contract (the watermark plus allowed_lateness):
//   watermarks(contract TEXT PRIMARY KEY, max_event_time INTEGER)
inline constexpr std::string_view kLateEventsTable = "late_events";
inline constexpr std::string_view kWatermarksTable = "watermarks";
std::string createLateEventsTableSql();
std::string createWatermarksTableSql();
// aggregation (kKey), window_start (kKey), events (kAdd).
std::vector<UpsertColumn> lateEventsColumns();
// contract (kKey), max_event_time (kMax).
std::vector<UpsertColumn> watermarksColumns();

// Session windows' snapshots (docs/aggregation.md, "Session snapshots"): per aggregation, the
// batch the snapshot covers and the max event time after it,
//   session_snapshots(aggregation TEXT PRIMARY KEY, batch_id INTEGER, max_event_time INTEGER)
// and every session open at that batch, whole (its agg_<name> row, encoded by the Aggregator),
//   session_snapshot_rows(aggregation TEXT, window_start INTEGER, group_key TEXT, state BLOB,
//                         PRIMARY KEY(aggregation, window_start, group_key))
// Both are created by the store's schema (version 5).
inline constexpr std::string_view kSessionSnapshotsTable = "session_snapshots";
inline constexpr std::string_view kSessionSnapshotRowsTable = "session_snapshot_rows";
std::string createSessionSnapshotsTableSql();
std::string createSessionSnapshotRowsTableSql();
// aggregation (kKey), batch_id (kSet), max_event_time (kSet).
std::vector<UpsertColumn> sessionSnapshotsColumns();
// aggregation, window_start, group_key (kKey), state (kSet).
std::vector<UpsertColumn> sessionSnapshotRowsColumns();

}  // namespace sluice::aggregate
