// Runs a query and prints the result as an aligned text table, for the demo's summary and
// sluicectl status. Blobs print as <N bytes>; NULL as an empty cell.
#pragma once

#include <ostream>
#include <string>

#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

Status printQuery(Db& db, const std::string& sql, std::ostream& out, size_t maxWidth = 48);

}  // namespace sluice::store
