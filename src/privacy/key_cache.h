// The active data keys of one shard of key-field values, in memory and bounded.
//
// A data key belongs to one (contract, key-field value): the first event with a new value
// creates a key (64 random bytes, a random key id, a random UUID key link) that encrypts that
// value's events until it expires, `lifetime` after creation; the next event then creates a new
// one. Keys are found by a keyed hash of the value (the "lookup"), never by the value itself.
// A new key's wrapped record goes into the batch that first uses it, so it is committed in the
// same transaction as the events it encrypts.
//
// Eviction keeps the cache within `capacity` entries but never drops a key created by a batch
// that has not committed yet (the database could not give it back). A key that is not cached is
// looked up in the database through the KeySource.
//
// One KeyCache per worker thread (each owns the values whose lookup hash falls in its shard):
// not thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/commit.h"
#include "core/status.h"
#include "privacy/key_wrap.h"
#include "privacy/secret.h"
#include "privacy/siv.h"

namespace sluice::privacy {

inline constexpr size_t kKeyLinkSize = 36;

struct ActiveKey {
    char keyLink[kKeyLinkSize] = {};
    uint32_t keyId = 0;
    int64_t createdAtMs = 0;
    int64_t expiresAtMs = 0;
    uint64_t createdInBatch = 0;      // 0: read back from the database (committed)
    uint64_t subjectFingerprint = 0;  // the last data subject linked to this key (0: none yet)
    SivKey siv;

    std::string_view link() const { return {keyLink, kKeyLinkSize}; }
};

// Committed keys, for cache misses (the database).
class KeySource {
public:
    struct Found {
        std::string keyLink;
        uint32_t keyId = 0;
        std::string wrapped;
        int64_t createdAtMs = 0;
        int64_t expiresAtMs = 0;
    };
    virtual ~KeySource() = default;
    // The newest key of `kind` with this lookup hash that is still active at `nowMs`.
    virtual Result<std::optional<Found>> findActive(const Digest& lookup, std::string_view kind, int64_t nowMs) = 0;
};

struct KeyCacheStats {
    uint64_t hits = 0;
    uint64_t loads = 0;     // found in the database
    uint64_t created = 0;
    uint64_t evicted = 0;
    uint64_t forgotten = 0;
};

class KeyCache {
public:
    // `kind` is stored with created keys ("data", or "dead_letter" for dead-letter copies).
    KeyCache(size_t capacity, int64_t lifetimeMs, std::string kind, const KeyWrapper& wrapper, KeySource& source);

    // The active key for `lookup` at `nowMs`, made current in `cipher`. Creates one when none is
    // active, appending its record to `created`. The pointer is valid until the next acquire().
    Result<ActiveKey*> acquire(const Digest& lookup, std::string_view contract, int64_t nowMs, uint64_t batchId,
                               SivCipher& cipher, std::vector<KeyRecord>& created);

    // Batches up to `batchId` are durable: their keys may be evicted.
    void committedThrough(uint64_t batchId) { committedThrough_ = batchId; }
    // Drops keys that were shredded (forget, retention) so that no new event uses them.
    void forget(const std::unordered_set<std::string>& keyLinks);

    size_t size() const { return entries_.size(); }
    const KeyCacheStats& stats() const { return stats_; }

private:
    struct DigestHash {
        size_t operator()(const Digest& d) const noexcept
        {
            size_t h;
            static_assert(sizeof h <= sizeof(Digest));
            std::memcpy(&h, d.data(), sizeof h);  // an HMAC output: already uniform
            return h;
        }
    };

    Result<ActiveKey*> create(const Digest& lookup, std::string_view contract, int64_t nowMs, uint64_t batchId,
                              SivCipher& cipher, std::vector<KeyRecord>& created);
    Result<ActiveKey*> load(const Digest& lookup, const KeySource::Found& found, SivCipher& cipher);
    ActiveKey& insert(const Digest& lookup);
    void evict();

    size_t capacity_;
    int64_t lifetimeMs_;
    std::string kind_;
    const KeyWrapper& wrapper_;
    KeySource& source_;
    uint64_t committedThrough_ = 0;
    std::unordered_map<Digest, ActiveKey, DigestHash> entries_;
    std::deque<Digest> order_;  // insertion order, for eviction
    KeyCacheStats stats_;
};

}  // namespace sluice::privacy
