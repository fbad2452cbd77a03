#include "store/schema.h"

#include <sqlite3.h>

#include <algorithm>
#include <iterator>

namespace sluice::store {
namespace {

// Each entry moves the schema from version i to i + 1. Never edit a released step: add one.
const char* const kMigrations[] = {
    // 0 -> 1: the first layout.
    R"SQL(
CREATE TABLE sluice_meta(
  key TEXT PRIMARY KEY,
  value) WITHOUT ROWID;
CREATE TABLE sluice_tables(
  name TEXT PRIMARY KEY,
  create_sql TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE batches(
  id INTEGER PRIMARY KEY,
  opened_at INTEGER NOT NULL,
  closed_at INTEGER NOT NULL,
  committed_at INTEGER NOT NULL,
  close_reason TEXT NOT NULL,
  requests INTEGER NOT NULL,
  received INTEGER NOT NULL,
  committed INTEGER NOT NULL,
  duplicates INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  keys_created INTEGER NOT NULL);
CREATE INDEX batches_committed ON batches(committed_at);
CREATE TABLE contracts(
  ref TEXT PRIMARY KEY,
  table_name TEXT NOT NULL,
  view_name TEXT NOT NULL,
  definition TEXT NOT NULL,
  first_seen INTEGER NOT NULL);
CREATE TABLE outputs(
  name TEXT PRIMARY KEY,
  contract TEXT NOT NULL,
  table_name TEXT NOT NULL,
  definition TEXT NOT NULL);
CREATE TABLE aggregations(
  name TEXT PRIMARY KEY,
  contract TEXT NOT NULL,
  table_name TEXT NOT NULL,
  definition TEXT NOT NULL);
CREATE TABLE rejects(
  id INTEGER PRIMARY KEY,
  batch_id INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  producer TEXT,
  seq INTEGER,
  event_index INTEGER,
  reason TEXT NOT NULL,
  message TEXT NOT NULL,
  contract TEXT,
  event_id TEXT,
  input_bytes INTEGER NOT NULL,
  input BLOB,
  input_key_link TEXT);
CREATE INDEX rejects_batch ON rejects(batch_id);
CREATE TABLE keys(
  id INTEGER PRIMARY KEY,
  key_link TEXT NOT NULL,
  key_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  contract TEXT NOT NULL,
  lookup BLOB NOT NULL,
  wrapped BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL);
CREATE INDEX keys_created ON keys(created_at);
CREATE INDEX keys_expires ON keys(expires_at);
CREATE TABLE key_subjects(
  subject BLOB NOT NULL,
  key_link TEXT NOT NULL,
  batch_id INTEGER NOT NULL);
CREATE INDEX key_subjects_batch ON key_subjects(batch_id);
CREATE TABLE producer_marks(
  producer TEXT NOT NULL,
  seq INTEGER NOT NULL,
  batch_id INTEGER NOT NULL,
  accepted INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  PRIMARY KEY(producer, seq)) WITHOUT ROWID;
CREATE TABLE producers(
  producer TEXT PRIMARY KEY,
  high_seq INTEGER NOT NULL,
  last_batch INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE watermarks(
  contract TEXT PRIMARY KEY,
  max_event_time INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE late_events(
  aggregation TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  events INTEGER NOT NULL,
  PRIMARY KEY(aggregation, window_start)) WITHOUT ROWID;
CREATE TABLE shred_log(
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  cause TEXT NOT NULL,
  keys INTEGER NOT NULL,
  derived_rows INTEGER NOT NULL,
  key_links TEXT NOT NULL);
)SQL",
    // 1 -> 2: the per-stage profile and late counts per batch; readable views of the log tables.
    R"SQL(
ALTER TABLE batches ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN parse_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN transform_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN aggregate_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN write_us INTEGER NOT NULL DEFAULT 0;
CREATE VIEW batch_log AS
  SELECT id, strftime('%Y-%m-%dT%H:%M:%fZ', opened_at / 1000.0, 'unixepoch') AS opened,
         strftime('%Y-%m-%dT%H:%M:%fZ', committed_at / 1000.0, 'unixepoch') AS committed_time,
         close_reason, requests, received, committed, duplicates, rejected, late, bytes, keys_created,
         committed_at - opened_at AS latency_ms, parse_us, transform_us, aggregate_us, write_us
  FROM batches;
CREATE VIEW dead_letters AS
  SELECT id, batch_id, strftime('%Y-%m-%dT%H:%M:%fZ', received_at / 1000.0, 'unixepoch') AS received_at,
         reason, message, contract, event_id, producer, seq, event_index, input_bytes
  FROM rejects;
)SQL",
    // 2 -> 3: exporters. Each batch records where its rows went (row_ranges: one line
    // "table first last" per table, rowids for events, derived rows and keys, window starts for
    // the windows it made final), so that exporters read a batch without an index scan; keys
    // remember their batch; exporters keep their cursors here.
    R"SQL(
ALTER TABLE batches ADD COLUMN row_ranges TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN batch_id INTEGER;
CREATE TABLE export_cursors(
  exporter TEXT PRIMARY KEY,
  batch_id INTEGER NOT NULL,
  shred_id INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT '',
  updated_at INTEGER NOT NULL) WITHOUT ROWID;
)SQL",
    // 3 -> 4: late events readable like the aggregation views (ISO-8601 window starts).
    R"SQL(
CREATE VIEW late_windows AS
  SELECT aggregation, strftime('%Y-%m-%dT%H:%M:%fZ', window_start / 1000.0, 'unixepoch') AS window_start,
         window_start AS window_start_ms, events
  FROM late_events;
)SQL",
    // 4 -> 5: session windows' snapshots (aggregate::kSessionSnapshotsTable and
    // kSessionSnapshotRowsTable; docs/aggregation.md, "Session snapshots").
    R"SQL(
CREATE TABLE session_snapshots(
  aggregation TEXT NOT NULL PRIMARY KEY,
  batch_id INTEGER NOT NULL,
  max_event_time INTEGER) WITHOUT ROWID;
CREATE TABLE session_snapshot_rows(
  aggregation TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  group_key TEXT NOT NULL,
  state BLOB NOT NULL,
  PRIMARY KEY(aggregation, window_start, group_key));
)SQL",
    // 5 -> 6: a derived row keeps only what differs from its event row (derivedTable()). Each
    // derived table of the older layout is rebuilt by its TableUpgrade when the configuration is
    // applied; the version tells an older sluice that it can no longer write here.
    R"SQL(
SELECT 1;
)SQL",
};

static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

std::string columnType(const FieldSpec& f, bool masked)
{
    if (f.array || masked || f.isPii())
        return "TEXT";
    switch (f.type) {
    case FieldType::kString: return "TEXT";
    case FieldType::kInteger:
    case FieldType::kBoolean: return "INTEGER";
    case FieldType::kNumber: return "REAL";
    }
    return "TEXT";
}

// The columns shared by events and derived tables, after their own leading columns.
void appendEventColumns(const ContractSpec& contract, const OutputSpec* output, std::string& create,
                        std::vector<std::string>& insert, std::string& select)
{
    create +=
        "  batch_id INTEGER NOT NULL,\n  event_id TEXT,\n  event_time INTEGER NOT NULL,\n"
        "  received_at INTEGER NOT NULL,\n  key_link TEXT NOT NULL,\n  consent TEXT NOT NULL";
    for (std::string_view c : kEventMetaColumns)
        insert.emplace_back(c);
    select += "batch_id, event_id, " + isoSql("event_time") + " AS event_time, event_time AS event_time_ms, " +
              isoSql("received_at") + " AS received_at, key_link, consent";
    for (const FieldSpec& f : contract.fields) {
        bool masked = false;
        if (output) {
            for (const std::string& m : output->maskedFields)
                masked |= (m == f.name);
        }
        create += ",\n  " + quoteIdent(f.name) + " " + columnType(f, masked);
        insert.push_back(f.name);
        select += ", " + quoteIdent(f.name);
    }
}

// Where batch_id and key_link are among kEventMetaColumns.
constexpr size_t kBatchIdMetaColumn = 0;
constexpr size_t kKeyLinkMetaColumn = 4;
static_assert(kEventMetaColumns[kBatchIdMetaColumn] == "batch_id" && kEventMetaColumns[kKeyLinkMetaColumn] == "key_link");

bool ownField(const std::vector<bool>& ownFields, size_t f)
{
    return f < ownFields.size() && ownFields[f];
}

// A derived table keeps its event's seq, its batch (retention deletes by batch), its key link
// (forgetting deletes by key link) and the fields whose value differs from the event row's.
std::string derivedCreateSql(const std::string& name, const OutputSpec& output, const ContractSpec& contract,
                             const std::vector<bool>& ownFields)
{
    std::string sql = "CREATE TABLE IF NOT EXISTS " + quoteIdent(name) +
                      "(\n  seq INTEGER PRIMARY KEY,\n  event_seq INTEGER NOT NULL,\n  batch_id INTEGER NOT NULL,\n"
                      "  key_link TEXT NOT NULL";
    for (size_t f = 0; f < contract.fields.size(); ++f) {
        if (!ownField(ownFields, f))
            continue;
        const FieldSpec& spec = contract.fields[f];
        const bool masked =
            std::find(output.maskedFields.begin(), output.maskedFields.end(), spec.name) != output.maskedFields.end();
        sql += ",\n  " + quoteIdent(spec.name) + " " + columnType(spec, masked);
    }
    return sql + ")";
}

// The derived rows with every column they had when they repeated their event's: the derived
// table joined with its events table. `readable`: as the analyst view shows them (ISO times and
// event_time_ms); otherwise as stored (epoch milliseconds).
std::string derivedSelect(const OutputSpec& output, const ContractSpec& contract, const std::vector<bool>& ownFields,
                          bool readable)
{
    std::string sql = "SELECT d.seq AS seq, d.event_seq AS event_seq, d.batch_id AS batch_id, e.event_id AS event_id, ";
    if (readable)
        sql += isoSql("e.event_time") + " AS event_time, e.event_time AS event_time_ms, " + isoSql("e.received_at") +
               " AS received_at, ";
    else
        sql += "e.event_time AS event_time, e.received_at AS received_at, ";
    sql += "d.key_link AS key_link, e.consent AS consent";
    for (size_t f = 0; f < contract.fields.size(); ++f) {
        const std::string q = quoteIdent(contract.fields[f].name);
        sql += std::string(ownField(ownFields, f) ? ", d." : ", e.") + q + " AS " + q;
    }
    return sql + " FROM " + quoteIdent(output.tableName()) + " AS d JOIN " + quoteIdent(contract.tableName()) +
           " AS e ON e.seq = d.event_seq";
}

const TableUpgrade* upgradeFrom(const TableDef& table, const std::string& storedCreateSql)
{
    for (const TableUpgrade& u : table.upgrades)
        if (u.fromCreateSql == storedCreateSql)
            return &u;
    return nullptr;
}

}  // namespace

Result<int> schemaVersion(Db& db)
{
    auto v = db.queryInt("PRAGMA user_version");
    if (!v)
        return v.status();
    return static_cast<int>(v->value_or(0));
}

Status migrate(Db& db, int target)
{
    auto current = schemaVersion(db);
    if (!current)
        return current.status();
    if (*current > kSchemaVersion)
        return Status::invalid("the database has schema version " + std::to_string(*current) +
                               ", newer than this sluice understands (" + std::to_string(kSchemaVersion) +
                               "); upgrade sluice");
    if (*current >= target)
        return Status::ok();
    auto txn = Txn::begin(db);
    if (!txn)
        return txn.status();
    for (int v = *current; v < target; ++v) {
        Status s = db.exec(kMigrations[v]);
        if (!s)
            return s.withContext("migrating the schema from version " + std::to_string(v) + " to " +
                                 std::to_string(v + 1));
    }
    SLUICE_RETURN_IF_ERROR(db.exec("PRAGMA user_version = " + std::to_string(target)));
    return txn->commit();
}

TableDef eventsTable(const ContractSpec& contract)
{
    TableDef t;
    t.name = contract.tableName();
    t.createSql = "CREATE TABLE IF NOT EXISTS " + quoteIdent(t.name) + "(\n  seq INTEGER PRIMARY KEY,\n";
    std::string select = "SELECT seq, ";
    appendEventColumns(contract, nullptr, t.createSql, t.insertColumns, select);
    t.createSql += ")";
    t.viewName = contract.viewName();
    t.viewSql = "CREATE VIEW " + quoteIdent(t.viewName) + " AS " + select + " FROM " + quoteIdent(t.name);
    return t;
}

TableDef derivedTable(const OutputSpec& output, const ContractSpec& contract, const std::vector<bool>& ownFields)
{
    TableDef t;
    t.name = output.tableName();
    t.createSql = derivedCreateSql(t.name, output, contract, ownFields);
    // The stage's row: event_seq, the event's meta columns, every field (kEventMetaColumns).
    const size_t metaCells = std::size(kEventMetaColumns);
    t.insertColumns = {"event_seq", "batch_id", "key_link"};
    t.insertCells = {0, 1 + kBatchIdMetaColumn, 1 + kKeyLinkMetaColumn};
    for (size_t f = 0; f < contract.fields.size(); ++f) {
        if (!ownField(ownFields, f))
            continue;
        t.insertColumns.push_back(contract.fields[f].name);
        t.insertCells.push_back(1 + metaCells + f);
    }
    // Retention removes derived rows by age, by batch: an index that only ever grows at its end.
    t.indexSql.push_back("CREATE INDEX IF NOT EXISTS " + quoteIdent(t.name + "_batch") + " ON " + quoteIdent(t.name) +
                         "(batch_id)");
    t.viewName = output.viewName();
    t.viewSql = "CREATE VIEW " + quoteIdent(t.viewName) + " AS " + derivedSelect(output, contract, ownFields, true);

    // Before schema 6 a derived row repeated its event's columns: the table is rebuilt with the
    // columns it keeps (the rows, their seq and so the exporters' row ranges stay the same).
    TableUpgrade repeated;
    repeated.fromCreateSql = "CREATE TABLE IF NOT EXISTS " + quoteIdent(t.name) +
                             "(\n  seq INTEGER PRIMARY KEY,\n  event_seq INTEGER NOT NULL,\n";
    {
        std::vector<std::string> insert;
        std::string select;
        appendEventColumns(contract, &output, repeated.fromCreateSql, insert, select);
        repeated.fromCreateSql += ")";
    }
    const std::string rebuilt = t.name + "_rebuilt";
    std::string columns = "seq";
    for (const std::string& c : t.insertColumns)
        columns += ", " + quoteIdent(c);
    repeated.statements = {
        "DROP VIEW IF EXISTS " + quoteIdent(t.viewName),
        derivedCreateSql(rebuilt, output, contract, ownFields),
        "INSERT INTO " + quoteIdent(rebuilt) + "(" + columns + ") SELECT " + columns + " FROM " + quoteIdent(t.name),
        "DROP TABLE " + quoteIdent(t.name),
        "ALTER TABLE " + quoteIdent(rebuilt) + " RENAME TO " + quoteIdent(t.name),
    };
    t.upgrades.push_back(std::move(repeated));
    return t;
}

std::string derivedRowsSql(const OutputSpec& output, const ContractSpec& contract, const std::vector<bool>& ownFields)
{
    return derivedSelect(output, contract, ownFields, false);
}

Status applyTable(Db& db, const TableDef& table)
{
    auto existing = db.prepare("SELECT create_sql FROM sluice_tables WHERE name = ?");
    if (!existing)
        return existing.status();
    existing->bindText(1, table.name);
    auto row = existing->step();
    if (!row)
        return row.status();
    if (*row) {
        const std::string stored(existing->columnText(0));
        existing->reset();
        if (stored != table.createSql) {
            const TableUpgrade* upgrade = upgradeFrom(table, stored);
            if (!upgrade)
                return Status::invalid("table " + table.name +
                                       " already exists with a different layout: a contract changed without a new "
                                       "version, or an aggregation changed under the same name (give it a new name; "
                                       "the old table is kept)");
            for (const std::string& statement : upgrade->statements)
                SLUICE_RETURN_IF_ERROR(db.exec(statement).withContext("upgrading table " + table.name));
            auto record = db.prepare("UPDATE sluice_tables SET create_sql = ? WHERE name = ?");
            if (!record)
                return record.status();
            record->bindText(1, table.createSql).bindText(2, table.name);
            SLUICE_RETURN_IF_ERROR(record->run());
        }
    } else {
        existing->reset();
        SLUICE_RETURN_IF_ERROR(db.exec(table.createSql));
        auto record = db.prepare("INSERT INTO sluice_tables(name, create_sql) VALUES(?, ?)");
        if (!record)
            return record.status();
        record->bindText(1, table.name).bindText(2, table.createSql);
        SLUICE_RETURN_IF_ERROR(record->run());
    }
    existing->reset();
    for (const std::string& index : table.indexSql)
        SLUICE_RETURN_IF_ERROR(db.exec(index));
    if (!table.viewName.empty()) {
        SLUICE_RETURN_IF_ERROR(db.exec("DROP VIEW IF EXISTS " + quoteIdent(table.viewName)));
        SLUICE_RETURN_IF_ERROR(db.exec(table.viewSql));
    }
    return Status::ok();
}

Status checkTables(Db& db, const std::vector<TableDef>& tables)
{
    auto existing = db.prepare("SELECT create_sql FROM sluice_tables WHERE name = ?");
    if (!existing)
        return existing.status();
    for (const TableDef& t : tables) {
        existing->bindText(1, t.name);
        auto row = existing->step();
        if (!row)
            return row.status();
        bool differs = *row && existing->columnText(0) != t.createSql &&
                       !upgradeFrom(t, std::string(existing->columnText(0)));
        existing->reset();
        if (differs)
            return Status::invalid("table " + t.name +
                                   " already exists with a different layout: a contract changed without a new "
                                   "version, or an aggregation changed under the same name (give it a new name)");
    }
    return Status::ok();
}

Status registerPipeline(Db& db, const PipelineSpec& pipeline, int64_t nowMs)
{
    auto known = db.prepare("SELECT definition FROM contracts WHERE ref = ?");
    if (!known)
        return known.status();
    auto contract = db.prepare(
        "INSERT INTO contracts(ref, table_name, view_name, definition, first_seen) VALUES(?, ?, ?, ?, ?) "
        "ON CONFLICT(ref) DO NOTHING");
    if (!contract)
        return contract.status();
    for (const ContractSpec& c : pipeline.contracts) {
        known->bindText(1, c.ref);
        auto row = known->step();
        if (!row)
            return row.status();
        bool changed = *row && known->columnText(0) != c.definition;
        known->reset();
        if (changed)
            return Status::invalid(c.path + ": contract " + c.ref +
                                   " differs from the one this database already holds; contracts are immutable, "
                                   "publish the change as a new version");
        const std::string table = c.tableName();
        const std::string view = c.viewName();
        contract->bindText(1, c.ref).bindText(2, table).bindText(3, view).bindText(4, c.definition).bind(5, nowMs);
        SLUICE_RETURN_IF_ERROR(contract->run());
    }
    auto output = db.prepare(
        "INSERT INTO outputs(name, contract, table_name, definition) VALUES(?, ?, ?, ?) "
        "ON CONFLICT(name) DO UPDATE SET contract = excluded.contract, definition = excluded.definition");
    if (!output)
        return output.status();
    for (const OutputSpec& o : pipeline.outputs) {
        const std::string table = o.tableName();
        std::string definition = std::string("{\"type\":\"") +
                                 (o.type == OutputType::kGranular ? "granular" : "cumulative") + "\",\"purposes\":[";
        for (size_t i = 0; i < o.purposes.size(); ++i) {
            if (i)
                definition += ',';
            definition += std::to_string(o.purposes[i]);
        }
        definition += "],\"algorithm\":\"" + std::string(maskAlgorithmName(o.algorithm)) + "\"}";
        output->bindText(1, o.name).bindText(2, o.contract).bindText(3, table).bindText(4, definition);
        SLUICE_RETURN_IF_ERROR(output->run());
    }
    auto aggregation = db.prepare(
        "INSERT INTO aggregations(name, contract, table_name, definition) VALUES(?, ?, ?, ?) "
        "ON CONFLICT(name) DO UPDATE SET definition = excluded.definition");
    if (!aggregation)
        return aggregation.status();
    for (const AggregationSpec& a : pipeline.aggregations) {
        const std::string table = a.tableName();
        const ContractSpec* contract = pipeline.findContract(a.contract);
        const std::string definition = contract ? aggregationDefinition(a, *contract) : std::string("{}");
        aggregation->bindText(1, a.name).bindText(2, a.contract).bindText(3, table).bindText(4, definition);
        SLUICE_RETURN_IF_ERROR(aggregation->run());
    }
    return Status::ok();
}

}  // namespace sluice::store
