// Query results as aligned text tables, for the demo's summary. Blobs print as <N bytes>; NULL
// as an empty cell.
#pragma once

#include <ostream>
#include <string>

#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

Status printQuery(Db& db, const std::string& sql, std::ostream& out, size_t maxWidth = 48);

// The demo's look at a database the built-in configuration filled: events per country, what is
// stored for PII fields, the derived output, the aggregation, dead letters by reason and the
// batches' conservation law, each a table under its title (a part that fails prints why).
void printDemoReport(Db& db, std::ostream& out);

}  // namespace sluice::store
