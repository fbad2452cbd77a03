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

inline constexpr int kSchemaVersion = 5;

// Brings the base schema to `target` (default: the current version) in one transaction.
// Refuses a database written by a newer sluice.
Status migrate(Db& db, int target = kSchemaVersion);
Result<int> schemaVersion(Db& db);

TableDef eventsTable(const ContractSpec& contract);
TableDef derivedTable(const OutputSpec& output, const ContractSpec& contract);

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
