// Reading and shredding key material in the database. The writer thread inserts keys as part of
// batches (batch_writer.h); everything else that touches the keys table lives here: lookups on a
// cache miss (one KeyReader per worker thread, on its own read-only connection), exports, and
// crypto-shredding (sluicectl forget, retention).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/commit.h"
#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

struct StoredKey {
    int64_t rowid = 0;
    std::string keyLink;
    uint32_t keyId = 0;
    std::string kind;
    std::string contract;
    std::string wrapped;
    int64_t createdAtMs = 0;
    int64_t expiresAtMs = 0;
    Digest lookup{};
};

// The keys table's columns as readStoredKey reads them, for a SELECT list.
inline constexpr const char* kStoredKeyColumns =
    "id, key_link, key_id, kind, contract, wrapped, created_at, expires_at, lookup";
StoredKey readStoredKey(const Stmt& row);

// Read access for the pipeline's key caches, on a connection of its own (one per worker).
// The keys table has no index on the lookup hash (random inserts into one would cost more
// than the events themselves whenever many keys are new); instead the caches keep a
// directory of the active keys, read once at startup with forEachActive(), and fetch a key
// by its rowid when it is not in memory.
class KeyReader {
public:
    static Result<KeyReader> open(const std::string& path);

    // Every key of `kind` still active at `nowMs` (expires_at > nowMs), oldest first.
    Status forEachActive(std::string_view kind, int64_t nowMs,
                         const std::function<void(const Digest& lookup, int64_t rowid, int64_t expiresAtMs)>& fn);
    // Every key of `kind` that expires exactly at `expiresAtMs` (one term of a batch job's day
    // keys), oldest first; read through the expires_at index.
    Status forEachExpiringAt(std::string_view kind, int64_t expiresAtMs,
                             const std::function<void(const Digest& lookup, int64_t rowid, int64_t expiresAtMs)>& fn);
    Result<std::optional<StoredKey>> byRowid(int64_t rowid);
    // Lookups between beginLookups() and endLookups() share one read transaction (one snapshot,
    // and the pages it has read) instead of opening one each. Keep it short: a checkpoint cannot
    // pass an open reader.
    Status beginLookups();
    Status endLookups();

private:
    KeyReader() = default;
    Db db_;
    Stmt byRowid_;
};

// Key selection for exports and shredding. Empty strings / zero times mean "any".
struct KeyFilter {
    std::string keyLink;
    std::optional<Digest> subject;
    int64_t createdFromMs = 0;
    int64_t createdToMs = 0;   // exclusive; 0 = no bound
    std::string kind = "data";
};

Result<std::vector<StoredKey>> findKeys(Db& db, const KeyFilter& filter);

// The key stored under `keyLink`, of any kind; nullopt when there is none.
Result<std::optional<StoredKey>> keyByLink(Db& db, std::string_view keyLink);

// Every key's id and link, oldest first.
Status forEachKeyId(Db& db, const std::function<void(uint32_t keyId, std::string_view keyLink)>& fn);

// The keys linked to a data subject (key_subjects), by the keyed hash of its value.
Result<std::vector<std::string>> subjectKeyLinks(Db& db, const Digest& subject);

// A shredding of a key, from shred_log.
struct ShredRecord {
    int64_t atMs = 0;
    std::string cause;  // "sluicectl forget --subject", "sluicectl forget --key-link", "retention"
};

// The last time `keyLink` was shredded; nullopt when it never was (or its record is gone).
Result<std::optional<ShredRecord>> lastShredOf(Db& db, std::string_view keyLink);

struct ShredReport {
    int64_t keys = 0;
    int64_t derivedRows = 0;
    int64_t deadLetters = 0;
    std::vector<std::string> keyLinks;
};

// What shredKeys removes besides the keys. Forgetting removes everything at once (each part a
// scan of its table); retention removes derived rows and subject links by age instead, which
// needs no scan (see maintenance.h).
struct ShredScope {
    bool derivedRows = true;
    bool subjectLinks = true;
    bool deadLetters = true;
};

// Deletes the keys, their subject links, the derived rows (plaintext) they encrypted and the
// dead-letter copies encrypted under them, and records the shredding in shred_log. The caller
// owns the transaction; after it commits, call checkpointTruncate() so that no copy of the key
// stays in the WAL.
Result<ShredReport> shredKeys(Db& db, const std::vector<std::string>& keyLinks, std::string_view cause,
                              int64_t nowMs, const ShredScope& scope = {});

// What shredKeys(db, keyLinks, ...) would delete now, changing nothing (forget --dry-run):
// the keys, derived rows and dead-letter copies, counted.
Result<ShredReport> previewShred(Db& db, const std::vector<std::string>& keyLinks);

// Checkpoints the whole WAL into the database and truncates it to zero bytes, waiting up to
// `timeoutMs` for readers and the writer to let it finish.
Status checkpointTruncate(Db& db, int timeoutMs);

}  // namespace sluice::store
