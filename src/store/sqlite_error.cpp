#include "store/sqlite_error.h"

#include <sqlite3.h>

#include <string>

namespace sluice::store {

Status sqliteError(sqlite3* db, int rc, std::string_view context)
{
    std::string message(context);
    message += ": ";
    // The connection's message is more specific than the code's, when it belongs to this code.
    if (db && sqlite3_extended_errcode(db) == rc)
        message += sqlite3_errmsg(db);
    else
        message += sqlite3_errstr(rc);
    message += " (sqlite " + std::to_string(rc) + ")";
    switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN: return Status::ioError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::corruption(message);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH: return Status::permission(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status::error(StatusCode::kUnavailable, message);
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE: return Status::invalid(message);
    default: return Status::internal(message);
    }
}

bool isStorageFault(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL: return true;
    default: return false;
    }
}

}  // namespace sluice::store
