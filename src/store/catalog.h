// What a database recorded about the configuration it was written under (the contracts and
// outputs tables, and which derived tables exist), for tools that read a database without the
// daemon's configuration: sluicectl decrypt and forget.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

struct StoredContract {
    std::string ref;
    std::string tableName;   // events_<...>
    std::string viewName;
    std::string definition;  // the contract file's JSON, as it was loaded
};

// The contract with ref `ref`; nullopt when the database has none.
Result<std::optional<StoredContract>> contractByRef(Db& db, std::string_view ref);
// The contract whose events table or view is named `name`; nullopt when none.
Result<std::optional<StoredContract>> contractByTable(Db& db, std::string_view name);

struct StoredOutput {
    std::string name;
    std::string contract;  // its source contract's ref
    std::string tableName;
};

// The derived output named `name`, or whose table is `name`; nullopt when none.
Result<std::optional<StoredOutput>> outputByName(Db& db, std::string_view name);

// The derived tables (derived_<output>) the database holds, sorted.
Result<std::vector<std::string>> derivedTables(Db& db);

}  // namespace sluice::store
