// What the daemon reads back from the database when it starts: where batch numbering resumes,
// which producer requests are already committed, the event-time watermarks, and small settings.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

struct MarkRow {
    std::string producer;
    uint64_t seq = 0;
    uint32_t accepted = 0;
    uint32_t rejected = 0;
};

Status forEachMark(Db& db, const std::function<void(MarkRow&&)>& fn);
Result<std::vector<std::pair<std::string, int64_t>>> loadWatermarks(Db& db);
// Whether the database has a table of that name.
Result<bool> tableExists(Db& db, const std::string& name);

// sluice_meta key of the master-key check value (privacy::KeyWrapper::makeCheck).
inline constexpr const char* kMasterKeyCheckMeta = "master_key_check";

Result<std::optional<std::string>> getMeta(Db& db, const std::string& key);

// What privacy::verifyMasterKey needs of a database: its master-key check value, and whether
// it holds keys. recordMasterKeyCheck stores the value (once, for a database without keys).
struct MasterKeyCheck {
    std::optional<std::string> value;
    bool holdsKeys = false;
};
Result<MasterKeyCheck> readMasterKeyCheck(Db& db);
Status recordMasterKeyCheck(Db& db, std::string_view value);
Status setMeta(Db& db, const std::string& key, std::string_view value);

// PRAGMA quick_check: "ok" or what is wrong.
Status quickCheck(Db& db);

}  // namespace sluice::store
