// What a batch job keeps in SQLite besides the daemon's tables (docs/jobs.md): in the work
// database job_used_keys, the rowids (in the group's key store) of every key the run used, which
// a run with a SQLite target copies out of the key store at its end. Also the reads a job makes
// of its work database's views.
//
// Each function works on the connection it is given; the caller's thread owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/db.h"
#include "store/key_table.h"

namespace sluice::store {

// The key store: drops the index on key_link that earlier versions made. Nothing looks a key up
// by its link (runs find the keys of earlier runs by their lookup hash, and the used keys by
// rowid), and keeping a random UUID in order cost more than storing the keys themselves.
Status dropKeyLinkIndex(Db& keyStore);

// The work database's list of the keys the run used: created when missing.
class UsedKeyList {
public:
    static Result<UsedKeyList> open(Db& work);
    UsedKeyList() = default;

    // Records the key store's rowid `keyRowid`; a key already listed is listed once. True when
    // this call listed it.
    Result<bool> add(int64_t keyRowid);

private:
    Db* db_ = nullptr;
    Stmt insert_;
};

// With the key store attached to the work database (attachKeyStore; detachKeyStore after, also
// when something in between failed): how many keys the run used; and, in one transaction,
// copying them into the work database's own keys table (a job's SQLite target), keeping each
// (subject, key) row of key_subjects once (the first), dropping the list and the sluice_meta
// entry `checkpointMeta`.
Status attachKeyStore(Db& work, const std::string& keyStorePath);
Status detachKeyStore(Db& work);
Result<int64_t> countUsedKeys(Db& work);
Status adoptUsedKeys(Db& work, std::string_view checkpointMeta);

// Every window of the aggregation table `table` marked final and complete, in one statement: a job
// has counted every row of its input before it writes its aggregations, and no later row can
// change them.
Status markWindowsComplete(Db& db, const std::string& table);

// Every row of the view `view` by window_start_ms: `columns` once with the column names, then
// `row` with the statement on each row.
Status forEachWindowRow(Db& db, const std::string& view,
                        const std::function<void(const std::vector<std::string>& names)>& columns,
                        const std::function<void(const Stmt& row)>& row);

}  // namespace sluice::store
