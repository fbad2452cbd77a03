// The keys of a job group: a sluice database (the daemon's schema; only its keys table is used)
// at <key_store>/<group>.keys.db, wrapped under the master key. Every job of the group reuses
// its keys, so the same input encrypts to the same bytes in every run of the group; a new group
// starts with no keys. One job of a group runs at a time (a lock file next to the store).
//
// The job's key stage writes it (store()), the writer reads the keys of earlier runs from it,
// and the main thread syncs it before publishing (sync()); the transform's lanes read the same
// file through their own connections (sources()).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/commit.h"
#include "core/status.h"
#include "privacy/key_wrap.h"
#include "store/batch_writer.h"
#include "store/job_tables.h"
#include "store/key_table.h"
#include "transform/db_key_source.h"

namespace sluice::job {

class KeyStore {
public:
    // Creates the store when it does not exist; checks the master key against it.
    static Result<std::unique_ptr<KeyStore>> open(const std::string& path, const privacy::KeyWrapper& wrapper);
    ~KeyStore();

    transform::KeySourceFactory sources() const { return transform::databaseKeySources(path_); }
    // Stores new data keys in one transaction and sets their rowids.
    Status store(std::vector<KeyRecord>& keys, int64_t nowMs);
    // A stored key by its rowid (one an earlier run of the group made), on a read connection of
    // its own; lookups between beginLookups() and endLookups() share one read transaction.
    Result<std::optional<store::StoredKey>> byRowid(int64_t rowid) { return reader_->byRowid(rowid); }
    Status beginLookups() { return reader_->beginLookups(); }
    Status endLookups() { return reader_->endLookups(); }
    // Makes every commit so far durable (the store commits with synchronous=NORMAL: a crash of
    // the process loses nothing, a crash of the machine may lose the last commits until this).
    Status sync();

private:
    KeyStore() = default;
    std::string path_;
    int lockFd_ = -1;
    std::unique_ptr<store::BatchWriter> writer_;
    std::optional<store::KeyReader> reader_;
};

}  // namespace sluice::job
