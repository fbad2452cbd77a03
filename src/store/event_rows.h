// Reading a contract's events back, as stored (sluicectl decrypt): no interpretation of the
// columns, which the caller reads by name from the contract.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

// Calls `fn` with each row of the events table `table` (every column, `SELECT *`), in storage
// order: only the events encrypted by `keyLinks` unless it is nullopt, at most `limit` (0: all).
Status forEachEventRow(Db& db, const std::string& table, const std::optional<std::vector<std::string>>& keyLinks,
                       int64_t limit, const std::function<void(const Stmt&)>& fn);

}  // namespace sluice::store
