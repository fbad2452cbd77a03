#include "aggregate/aggregation_table.h"

#include <set>

#include "aggregate/subject_set.h"
#include "aggregate/window.h"

namespace sluice::aggregate {
namespace {

std::string_view metricName(MetricKind kind)
{
    switch (kind) {
    case MetricKind::kCount: return "count";
    case MetricKind::kSum: return "sum";
    case MetricKind::kMin: return "min";
    case MetricKind::kMax: return "max";
    case MetricKind::kAvg: return "avg";
    case MetricKind::kDistinct: return "distinct";
    }
    return "?";
}

std::string metricText(const MetricSpec& m)
{
    std::string out(metricName(m.kind));
    if (m.kind != MetricKind::kCount)
        out += "(" + m.field + ")";
    return out;
}

std::string_view sqlType(FieldType type)
{
    switch (type) {
    case FieldType::kString: return "TEXT";
    case FieldType::kInteger: return "INTEGER";
    case FieldType::kNumber: return "REAL";
    case FieldType::kBoolean: return "INTEGER";
    }
    return "";
}

class Checker {
public:
    explicit Checker(const AggregationSpec& spec)
    {
        if (!spec.path.empty())
            prefix_ = spec.path + ": ";
        prefix_ += "aggregation \"" + spec.name + "\": ";
    }
    Status error(const std::string& message) const { return Status::invalid(prefix_ + message); }

private:
    std::string prefix_;
};

// Rules that do not depend on the column layout.
Status checkSpec(const AggregationSpec& spec, const ContractSpec& contract, const Checker& c)
{
    if (spec.name.empty())
        return c.error("has no name");
    if (!spec.contract.empty() && spec.contract != contract.ref)
        return c.error("is defined on contract \"" + spec.contract + "\", not \"" + contract.ref + "\"");
    const std::string maxMs = std::to_string(kMaxWindowMs) + " ms";
    switch (spec.window) {
    case WindowKind::kTumbling:
        if (spec.windowMs <= 0)
            return c.error("window must be longer than 0 ms");
        if (spec.windowMs > kMaxWindowMs)
            return c.error("window longer than " + maxMs);
        break;
    case WindowKind::kSliding:
        if (spec.windowMs <= 0)
            return c.error("window.size must be longer than 0 ms");
        if (spec.windowMs > kMaxWindowMs)
            return c.error("window.size longer than " + maxMs);
        if (spec.slideMs <= 0)
            return c.error("window.slide must be longer than 0 ms");
        if (spec.slideMs > spec.windowMs)
            return c.error("window.slide (" + std::to_string(spec.slideMs) + " ms) is longer than window.size (" +
                           std::to_string(spec.windowMs) + " ms)");
        if (spec.windowMs % spec.slideMs != 0)
            return c.error("window.slide (" + std::to_string(spec.slideMs) + " ms) does not divide window.size (" +
                           std::to_string(spec.windowMs) + " ms): every window must hold whole slides");
        if (spec.windowMs / spec.slideMs > kMaxWindowsPerEvent)
            return c.error("window.size / window.slide is " + std::to_string(spec.windowMs / spec.slideMs) +
                           " windows per event; at most " + std::to_string(kMaxWindowsPerEvent));
        break;
    case WindowKind::kSession:
        if (spec.gapMs <= 0)
            return c.error("window.gap must be longer than 0 ms");
        if (spec.gapMs > kMaxWindowMs)
            return c.error("window.gap longer than " + maxMs);
        break;
    }
    if (spec.allowedLatenessMs < 0)
        return c.error("allowed_lateness must not be negative");
    if (spec.allowedLatenessMs > kMaxLatenessMs)
        return c.error("allowed_lateness longer than " + std::to_string(kMaxLatenessMs) + " ms");
    if (spec.minGroupSize < 1 || spec.minGroupSize > static_cast<int>(SubjectSet::kExactLimit))
        return c.error("min_group_size must be from 1 to " + std::to_string(SubjectSet::kExactLimit) +
                       " (distinct subjects are counted exactly up to " + std::to_string(SubjectSet::kExactLimit) +
                       ")");
    for (int level : spec.consent)
        if (level < 0 || level > kMaxPurposeLevel)
            return c.error("consent level " + std::to_string(level) + " outside 0.." +
                           std::to_string(kMaxPurposeLevel));
    if (spec.metrics.empty())
        return c.error("has no metrics");

    std::set<std::string_view> grouped;
    for (const std::string& name : spec.groupBy) {
        int i = contract.fieldIndex(name);
        if (i < 0)
            return c.error("group_by field \"" + name + "\" is not a field of " + contract.ref);
        const FieldSpec& f = contract.fields[static_cast<size_t>(i)];
        if (f.isPii() && spec.window != WindowKind::kSession)
            return c.error("group_by field \"" + name + "\" is PII (level " + std::to_string(f.pii) +
                           "); PII fields cannot be grouped by (distinct(" + name +
                           ") can count them; session windows group by a keyed pseudonym of them)");
        if (f.array)
            return c.error("group_by field \"" + name + "\" is an array; only scalar fields can be grouped by");
        if (!grouped.insert(name).second)
            return c.error("group_by names \"" + name + "\" twice");
    }
    if (spec.window == WindowKind::kSession) {
        const bool bounded = (!contract.keyField.empty() && grouped.count(contract.keyField)) ||
                             (!contract.subjectField.empty() && grouped.count(contract.subjectField));
        if (!bounded) {
            std::string fields = "the contract's key_field \"" + contract.keyField + "\"";
            if (!contract.subjectField.empty())
                fields += " or data_subject_field \"" + contract.subjectField + "\"";
            return c.error("a session window needs group_by to include " + fields +
                           ", which bound a session (grouped by anything else, the events of many people would "
                           "run together into sessions that never end)");
        }
    }

    for (const MetricSpec& m : spec.metrics) {
        if (m.kind == MetricKind::kCount) {
            if (!m.field.empty())
                return c.error("count takes no field (got \"" + m.field + "\")");
            continue;
        }
        if (m.field.empty())
            return c.error(std::string(metricName(m.kind)) + " needs a field");
        int i = contract.fieldIndex(m.field);
        if (i < 0)
            return c.error(metricText(m) + ": \"" + m.field + "\" is not a field of " + contract.ref);
        const FieldSpec& f = contract.fields[static_cast<size_t>(i)];
        if (f.array)
            return c.error(metricText(m) + ": \"" + m.field + "\" is an array; only scalar fields can be aggregated");
        if (m.kind != MetricKind::kDistinct && f.type != FieldType::kInteger && f.type != FieldType::kNumber)
            return c.error(metricText(m) + ": \"" + m.field + "\" is a " +
                           std::string(fieldTypeName(f.type, false)) + "; " +
                           std::string(metricName(m.kind)) + " needs an integer or number field");
    }
    return Status::ok();
}

}  // namespace

void AggregationTable::addColumn(std::string name, MergeOp op, std::string type)
{
    columns_.push_back(UpsertColumn{std::move(name), op, -1});
    sqlTypes_.push_back(std::move(type));
}

Result<AggregationTable> AggregationTable::create(const AggregationSpec& spec, const ContractSpec& contract)
{
    Checker c(spec);
    SLUICE_RETURN_IF_ERROR(checkSpec(spec, contract, c));

    AggregationTable t;
    t.name_ = spec.name;
    t.tableName_ = spec.tableName();
    t.contract_ = contract.ref;
    t.window_ = spec.window;
    t.windowMs_ = spec.window == WindowKind::kSession ? 0 : spec.windowMs;
    t.slideMs_ = spec.window == WindowKind::kSliding ? spec.slideMs : t.windowMs_;
    t.gapMs_ = spec.window == WindowKind::kSession ? spec.gapMs : 0;
    t.minGroupSize_ = spec.minGroupSize;
    t.metrics_ = spec.metrics;

    t.addColumn("window_start", MergeOp::kKey, "INTEGER NOT NULL");
    t.addColumn("group_key", MergeOp::kKey, "TEXT NOT NULL");
    if (spec.window == WindowKind::kSession) {
        t.windowEndColumn_ = static_cast<int>(t.columns_.size());
        t.addColumn("window_end", MergeOp::kSet, "INTEGER NOT NULL");
    }
    for (const std::string& name : spec.groupBy) {
        int i = contract.fieldIndex(name);
        const FieldSpec& f = contract.fields[static_cast<size_t>(i)];
        t.groups_.push_back(GroupColumn{name, i, f.type, static_cast<int>(t.columns_.size()), f.isPii()});
        t.addColumn(name, MergeOp::kKeep, std::string(sqlType(f.type)));
    }
    t.countColumn_ = static_cast<int>(t.columns_.size());
    t.addColumn("count", MergeOp::kAdd, "INTEGER NOT NULL");

    auto numericFor = [&](const std::string& field) -> NumericField& {
        for (NumericField& n : t.numeric_)
            if (n.field == field)
                return n;
        int i = contract.fieldIndex(field);
        bool integer = contract.fields[static_cast<size_t>(i)].type == FieldType::kInteger;
        t.numeric_.push_back(NumericField{field, i, integer});
        return t.numeric_.back();
    };
    std::set<std::string> metricColumns;
    for (const MetricSpec& m : spec.metrics) {
        if (!metricColumns.insert(m.column()).second)
            return c.error("the metric " + metricText(m) + " is listed twice");
        switch (m.kind) {
        case MetricKind::kCount:
            break;
        case MetricKind::kSum:
        case MetricKind::kAvg: {
            NumericField& n = numericFor(m.field);
            if (n.sumColumn < 0) {
                n.sumColumn = static_cast<int>(t.columns_.size());
                t.addColumn("sum_" + m.field, MergeOp::kAdd, n.integer ? "INTEGER NOT NULL" : "REAL NOT NULL");
                n.countColumn = static_cast<int>(t.columns_.size());
                t.addColumn("n_" + m.field, MergeOp::kAdd, "INTEGER NOT NULL");
            }
            break;
        }
        case MetricKind::kMin:
        case MetricKind::kMax: {
            NumericField& n = numericFor(m.field);
            bool isMin = m.kind == MetricKind::kMin;
            (isMin ? n.minColumn : n.maxColumn) = static_cast<int>(t.columns_.size());
            t.addColumn(m.column(), isMin ? MergeOp::kMin : MergeOp::kMax, n.integer ? "INTEGER" : "REAL");
            break;
        }
        case MetricKind::kDistinct: {
            int i = contract.fieldIndex(m.field);
            FieldType type = contract.fields[static_cast<size_t>(i)].type;
            t.distinct_.push_back(DistinctField{m.field, i, type, -1, static_cast<int>(t.columns_.size())});
            t.addColumn(m.column(), MergeOp::kHllEstimate, "REAL NOT NULL");
            break;
        }
        }
    }
    t.subjectsColumn_ = static_cast<int>(t.columns_.size());
    t.addColumn("subjects", MergeOp::kSubjectsCount, "INTEGER NOT NULL DEFAULT 0");
    t.finalColumn_ = static_cast<int>(t.columns_.size());
    t.addColumn("final", MergeOp::kKeep, "INTEGER NOT NULL DEFAULT 0");
    for (DistinctField& d : t.distinct_) {
        d.sketchColumn = static_cast<int>(t.columns_.size());
        t.addColumn("hll_" + d.field, MergeOp::kHllMerge, "BLOB NOT NULL");
        t.columns_[static_cast<size_t>(d.estimateColumn)].source = d.sketchColumn;
    }
    // The empty set as the default, so that rows of an upgraded table merge like new ones.
    t.subjectSetColumn_ = static_cast<int>(t.columns_.size());
    t.addColumn("subject_set", MergeOp::kSubjectsMerge, "BLOB NOT NULL DEFAULT x'0300'");
    t.columns_[static_cast<size_t>(t.subjectsColumn_)].source = t.subjectSetColumn_;
    if (spec.window == WindowKind::kSession) {
        // Sessions are written whole, replacing the stored row.
        for (UpsertColumn& col : t.columns_)
            if (col.op != MergeOp::kKey) {
                col.op = MergeOp::kSet;
                col.source = -1;
            }
    }
    if (contract.subjectFieldIndex >= 0) {
        t.subjectFieldIndex_ = contract.subjectFieldIndex;
        t.subjectField_ = contract.subjectField;
    } else if (contract.keyFieldIndex >= 0) {
        t.subjectFieldIndex_ = contract.keyFieldIndex;
        t.subjectField_ = contract.keyField;
        t.subjectIsKeyField_ = true;
    }

    // A group field may not take the name of another column, in the table or in the view.
    std::set<std::string_view> names;
    for (const UpsertColumn& col : t.columns_)
        if (!names.insert(col.name).second)
            return c.error("group_by field \"" + col.name + "\" has the name of a column the aggregation needs");
    for (const GroupColumn& g : t.groups_)
        if (g.field == "window_end" || g.field == "window_start_ms" || g.field == "window_end_ms" ||
            g.field == "complete")
            return c.error("group_by field \"" + g.field + "\" has the name of a column of the view");
        else if (metricColumns.count(g.field))
            return c.error("group_by field \"" + g.field + "\" has the name of a metric column of the view");
    return t;
}

std::string AggregationTable::createTableSql() const { return createTableSql(true, true); }

std::string AggregationTable::createTableSql(bool withSubjects, bool withComplete) const
{
    std::string sql = "CREATE TABLE IF NOT EXISTS " + quoteIdent(tableName_) + " (";
    bool first = true;
    for (size_t i = 0; i < columns_.size(); ++i) {
        const int column = static_cast<int>(i);
        if (!withSubjects && (column == subjectsColumn_ || column == subjectSetColumn_))
            continue;
        sql += first ? "" : ", ";
        first = false;
        sql += quoteIdent(columns_[i].name) + " " + sqlTypes_[i];
        // Not written by the stream (the writer's inserts leave it 0): sluicectl reprocess
        // --complete sets it. Before the sketches, like every small column.
        if (column == finalColumn_ && withComplete)
            sql += ", \"complete\" " + std::string(kCompleteSqlType);
    }
    sql += ", PRIMARY KEY (\"window_start\", \"group_key\"))";
    if (distinct_.empty())
        sql += " WITHOUT ROWID";
    return sql;
}

std::vector<std::string> AggregationTable::createIndexSql() const
{
    if (window_ != WindowKind::kSession)
        return {};
    return {"CREATE INDEX IF NOT EXISTS " + quoteIdent(tableName_ + "_open") + " ON " +
            quoteIdent(tableName_) + " (\"window_start\") WHERE \"final\" = 0"};
}

std::string AggregationTable::createViewSql() const
{
    const std::string end = window_ == WindowKind::kSession ? std::string("\"window_end\"")
                                                             : "\"window_start\" + " + std::to_string(windowMs_);
    std::string sql = "CREATE VIEW IF NOT EXISTS " + quoteIdent(name_) + " AS SELECT ";
    sql += "strftime('%Y-%m-%dT%H:%M:%fZ', \"window_start\" / 1000.0, 'unixepoch') AS \"window_start\", ";
    sql += "strftime('%Y-%m-%dT%H:%M:%fZ', (" + end + ") / 1000.0, 'unixepoch') AS \"window_end\", ";
    sql += "\"window_start\" AS \"window_start_ms\"";
    if (window_ == WindowKind::kSession)
        sql += ", \"window_end\" AS \"window_end_ms\"";
    for (const GroupColumn& g : groups_)
        sql += ", " + quoteIdent(g.field);
    for (const MetricSpec& m : metrics_) {
        const std::string out = quoteIdent(m.column());
        const std::string sum = quoteIdent("sum_" + m.field);
        const std::string n = quoteIdent("n_" + m.field);
        switch (m.kind) {
        case MetricKind::kCount:
            sql += ", \"count\"";
            break;
        case MetricKind::kSum:
            // Like SQL's SUM(): NULL when no event had the field.
            sql += ", CASE WHEN " + n + " > 0 THEN " + sum + " END AS " + out;
            break;
        case MetricKind::kAvg:
            sql += ", CAST(" + sum + " AS REAL) / NULLIF(" + n + ", 0) AS " + out;
            break;
        case MetricKind::kMin:
        case MetricKind::kMax:
            sql += ", " + out;
            break;
        case MetricKind::kDistinct:
            sql += ", CAST(round(" + out + ") AS INTEGER) AS " + out;
            break;
        }
    }
    sql += ", \"final\", \"complete\" FROM " + quoteIdent(tableName_);
    if (minGroupSize_ > 1)
        sql += " WHERE \"subjects\" >= " + std::to_string(minGroupSize_);
    return sql;
}

std::vector<TableUpgrade> AggregationTable::upgrades() const
{
    const std::string table = quoteIdent(tableName_);
    const std::string addComplete = "ALTER TABLE " + table + " ADD COLUMN \"complete\" " + kCompleteSqlType;
    // Every shape: the layout before the complete column (reprocessing).
    TableUpgrade beforeComplete;
    beforeComplete.fromCreateSql = createTableSql(true, false);
    beforeComplete.statements.push_back(addComplete);
    if (window_ != WindowKind::kTumbling)
        return {std::move(beforeComplete)};  // sluice had no other shapes before subject sets
    TableUpgrade beforeSubjects;
    beforeSubjects.fromCreateSql = createTableSql(false, false);
    for (int column : {subjectsColumn_, subjectSetColumn_})
        beforeSubjects.statements.push_back("ALTER TABLE " + table + " ADD COLUMN " +
                                            quoteIdent(columns_[static_cast<size_t>(column)].name) + " " +
                                            sqlTypes_[static_cast<size_t>(column)]);
    beforeSubjects.statements.push_back(addComplete);
    return {std::move(beforeComplete), std::move(beforeSubjects)};
}

TableDef AggregationTable::tableDef() const
{
    TableDef def;
    def.name = tableName_;
    def.createSql = createTableSql();
    def.viewName = name_;
    def.viewSql = createViewSql();
    def.indexSql = createIndexSql();
    def.upgrades = upgrades();
    return def;
}

Status checkAggregation(const AggregationSpec& spec, const ContractSpec& contract)
{
    auto table = AggregationTable::create(spec, contract);
    return table ? Status::ok() : table.status();
}

std::string createLateEventsTableSql()
{
    return "CREATE TABLE IF NOT EXISTS \"late_events\" (\"aggregation\" TEXT NOT NULL, "
           "\"window_start\" INTEGER NOT NULL, \"events\" INTEGER NOT NULL, "
           "PRIMARY KEY (\"aggregation\", \"window_start\")) WITHOUT ROWID";
}

std::string createWatermarksTableSql()
{
    return "CREATE TABLE IF NOT EXISTS \"watermarks\" (\"contract\" TEXT NOT NULL PRIMARY KEY, "
           "\"max_event_time\" INTEGER NOT NULL) WITHOUT ROWID";
}

std::vector<UpsertColumn> lateEventsColumns()
{
    return {{"aggregation", MergeOp::kKey, -1}, {"window_start", MergeOp::kKey, -1},
            {"events", MergeOp::kAdd, -1}};
}

std::vector<UpsertColumn> watermarksColumns()
{
    return {{"contract", MergeOp::kKey, -1}, {"max_event_time", MergeOp::kMax, -1}};
}

std::string createSessionSnapshotsTableSql()
{
    return "CREATE TABLE IF NOT EXISTS \"session_snapshots\" (\"aggregation\" TEXT NOT NULL PRIMARY KEY, "
           "\"batch_id\" INTEGER NOT NULL, \"max_event_time\" INTEGER) WITHOUT ROWID";
}

std::string createSessionSnapshotRowsTableSql()
{
    // A rowid table: a state holds sketches of several KiB.
    return "CREATE TABLE IF NOT EXISTS \"session_snapshot_rows\" (\"aggregation\" TEXT NOT NULL, "
           "\"window_start\" INTEGER NOT NULL, \"group_key\" TEXT NOT NULL, \"state\" BLOB NOT NULL, "
           "PRIMARY KEY (\"aggregation\", \"window_start\", \"group_key\"))";
}

std::vector<UpsertColumn> sessionSnapshotsColumns()
{
    return {{"aggregation", MergeOp::kKey, -1}, {"batch_id", MergeOp::kSet, -1},
            {"max_event_time", MergeOp::kSet, -1}};
}

std::vector<UpsertColumn> sessionSnapshotRowsColumns()
{
    return {{"aggregation", MergeOp::kKey, -1}, {"window_start", MergeOp::kKey, -1},
            {"group_key", MergeOp::kKey, -1}, {"state", MergeOp::kSet, -1}};
}

}  // namespace sluice::aggregate
