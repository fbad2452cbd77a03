// Turns an SQLite result code into a Status that says what was being done and why it failed.
#pragma once

#include <string_view>

#include "core/status.h"

struct sqlite3;

namespace sluice::store {

Status sqliteError(sqlite3* db, int rc, std::string_view context);

// True for the result codes that mean the storage itself failed (disk full, I/O, corruption):
// the daemon must not acknowledge and must not retry on the same handle.
bool isStorageFault(int rc);

}  // namespace sluice::store
