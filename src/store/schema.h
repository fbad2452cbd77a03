// The database layout: the base tables every sluice database has (versioned, migrated in
// place) and the per-contract and per-output tables derived from the configuration.
// docs/sql.md describes every table and view; keep the two in step.
#pragma once

#include <string>
#include <vector>

#include "core/schema.h"
#include "core/spec.h"
#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

inline constexpr int kSchemaVersion = 6;

// Brings the base schema to `target` (default: the current version) in one transaction.
// Refuses a database written by a newer sluice.
Status migrate(Db& db, int target = kSchemaVersion);
Result<int> schemaVersion(Db& db);

TableDef eventsTable(const ContractSpec& contract);
// A derived output's table keeps, per row, what differs from the event row it was made from:
// `ownFields` (per contract field) are the fields it stores, the PII it shows in clear and the
// masked values (privacy::derivedRowFields()); with event_seq, batch_id and key_link. Its view
// reads the rest from the event row and shows the same columns as an events view, after
// event_seq. Rows the transformer hands over still carry every column (TableDef::insertCells).
TableDef derivedTable(const OutputSpec& output, const ContractSpec& contract, const std::vector<bool>& ownFields);
// SELECT ... FROM the derived table AS d JOIN its events table AS e: every derived row with the
// columns an events table has (as stored, epoch milliseconds), after seq and event_seq.
std::string derivedRowsSql(const OutputSpec& output, const ContractSpec& contract, const std::vector<bool>& ownFields);

// Creates the table and its indexes if missing, refuses an existing table of a different layout
// (a changed contract without a new ref, a changed aggregation under the same name), and
// (re)creates the view. Call inside a transaction.
Status applyTable(Db& db, const TableDef& table);

// Checks, without writing, that applyTable() would accept every table (for a reload, before it
// is accepted).
Status checkTables(Db& db, const std::vector<TableDef>& tables);

// Records the configuration in the registry tables (contracts, outputs, aggregations).
Status registerPipeline(Db& db, const PipelineSpec& pipeline, int64_t nowMs);

}  // namespace sluice::store
