// Reading and shredding key material in the database. The writer thread inserts keys as part of
// batches (batch_writer.h); everything else that touches the keys table lives here: lookups on a
// cache miss (one KeyReader per worker thread, on its own read-only connection), exports, and
// crypto-shredding (sluicectl forget, retention).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/commit.h"
#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

struct StoredKey {
    std::string keyLink;
    uint32_t keyId = 0;
    std::string kind;
    std::string contract;
    std::string wrapped;
    int64_t createdAtMs = 0;
    int64_t expiresAtMs = 0;
};

class KeyReader {
public:
    static Result<KeyReader> open(const std::string& path);

    // The newest key of `kind` with this lookup hash that is still active at `nowMs`.
    Result<std::optional<StoredKey>> findActive(const Digest& lookup, std::string_view kind, int64_t nowMs);

private:
    KeyReader() = default;
    Db db_;
    Stmt findActive_;
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

// Checkpoints the whole WAL into the database and truncates it to zero bytes, waiting up to
// `timeoutMs` for readers and the writer to let it finish.
Status checkpointTruncate(Db& db, int timeoutMs);

}  // namespace sluice::store
