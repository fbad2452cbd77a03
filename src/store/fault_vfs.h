// A VFS shim for the fault test: it forwards everything to the default VFS, but while a trigger
// file exists every write, truncate and sync of the database, WAL or journal fails as a full
// disk would (SQLITE_FULL). Registered only when the testing option names a trigger file.
#pragma once

#include <string>

#include "core/status.h"

namespace sluice::store {

inline constexpr const char* kFaultVfsName = "sluice-fault";

// Registers the shim (not as the default). Idempotent; the trigger path is process-wide.
Status registerFaultVfs(const std::string& triggerFile);

}  // namespace sluice::store
