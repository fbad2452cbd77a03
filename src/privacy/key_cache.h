// The data keys of one shard of key-field values: a directory of every active key (its
// lookup hash, rowid, expiry and last linked subject: 48 bytes each, plus its share of the hash table) and, within a bounded budget, the
// keys themselves, unwrapped and ready to encrypt.
//
// A data key belongs to one (contract, key-field value): the first event with a new value
// creates a key (64 random bytes, a random key id, a random UUID key link) that encrypts that
// value's events until it expires, `lifetime` after creation; the next event then creates a new
// one. Keys are found by a keyed hash of the value (the "lookup"), never by the value itself.
// A new key's wrapped record goes into the batch that first uses it, so it is committed in the
// same transaction as the events it encrypts; the writer then reports the key's rowid
// (committedKeys), and only from then on may the unwrapped key be evicted: the directory can
// fetch it back by rowid.
//
// One KeyCache per worker thread, each owning the values whose lookup hash falls in its shard:
// not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/commit.h"
#include "core/status.h"
#include "privacy/key_wrap.h"
#include "privacy/random.h"
#include "privacy/secret.h"
#include "privacy/siv.h"

namespace sluice::privacy {

inline constexpr size_t kKeyLinkSize = 36;

struct ActiveKey {
    char keyLink[kKeyLinkSize] = {};
    uint32_t keyId = 0;
    uint64_t subjectFingerprint = 0;  // the last data subject linked to this key (0: none yet)
    SivKey siv;

    std::string_view link() const { return {keyLink, kKeyLinkSize}; }
};

// Committed keys (the database).
class KeySource {
public:
    struct Found {
        std::string keyLink;
        uint32_t keyId = 0;
        std::string wrapped;
        int64_t createdAtMs = 0;
        int64_t expiresAtMs = 0;
        Digest lookup{};
    };
    using Visit = std::function<void(const Digest& lookup, int64_t rowid, int64_t expiresAtMs)>;

    virtual ~KeySource() = default;
    // Every key of `kind` active at `nowMs`, oldest first.
    virtual Status forEachActive(std::string_view kind, int64_t nowMs, const Visit& visit) = 0;
    // Every key of `kind` whose expiry is exactly `expiresAtMs`, oldest first.
    virtual Status forEachExpiringAt(std::string_view kind, int64_t expiresAtMs, const Visit& visit) = 0;
    // The key stored at `rowid`, if it is still there (it may have been shredded). A source may
    // keep what it opened for a fetch (a read transaction) for the fetches that follow, until
    // endFetches(): the cache's owner calls it when a batch's lookups are done.
    virtual Result<std::optional<Found>> fetch(int64_t rowid) = 0;
    virtual Status endFetches() { return Status::ok(); }
};

struct KeyCacheStats {
    uint64_t hits = 0;
    uint64_t loads = 0;     // unwrapped from the database
    uint64_t created = 0;
    uint64_t evicted = 0;
    uint64_t forgotten = 0;
    uint64_t termsRead = 0;     // partitionByTerm(): terms read into the directory
    uint64_t termsDropped = 0;  // ... and dropped from it again
};

// When a key must be valid, and for how long a key made now lives. The daemon judges by the
// wall clock and gives a new key `lifetime`; a batch job judges by the record's time and gives
// a new key the rest of that UTC day.
struct KeyTerm {
    int64_t nowMs = 0;        // a key is active while nowMs < its expiry
    int64_t createdAtMs = 0;  // recorded with a key made for this term
    int64_t expiresAtMs = 0;  // the expiry of a key made for this term
};

// A key the writer stored: which lookup it serves, and where it now lives.
struct StoredKeyRef {
    Digest lookup{};
    std::string keyLink;
    int64_t rowid = 0;
};

class KeyCache {
public:
    // `capacity`: unwrapped keys kept in memory. `kind` is stored with created keys ("data", or
    // "dead_letter" for the day keys of dead-letter copies).
    KeyCache(size_t capacity, int64_t lifetimeMs, std::string kind, const KeyWrapper& wrapper, KeySource& source);

    // Reads the directory of active keys whose lookup `mine` accepts (startup).
    Status preload(int64_t nowMs, const std::function<bool(const Digest&)>& mine);
    // Instead of preload(): the directory holds the keys of a term (an expiry) only once an
    // acquire() asks for that term, reading them then from the source (those `mine` accepts);
    // when it holds more than `maxEntries` keys (after reading a term or making a key), the
    // terms used least recently are dropped from it again (all but the keys not yet
    // committed), never the term in use. Only for a policy
    // whose lookup fixes the term, as a batch job's day keys do (the day is part of the
    // lookup): then every key a lookup can have shares one term, and a key not in the
    // directory is not in the source either. A job over many days thus holds the keys of the
    // days it is working on, not of every day it has seen.
    void partitionByTerm(size_t maxEntries, std::function<bool(const Digest&)> mine);

    // The active key for `lookup` at `nowMs`, made current in `cipher`. Creates one when none is
    // active, appending its record to `created`. The pointer is valid until the next acquire().
    Result<ActiveKey*> acquire(const Digest& lookup, std::string_view contract, int64_t nowMs, SivCipher& cipher,
                               std::vector<KeyRecord>& created)
    {
        return acquire(lookup, contract, KeyTerm{nowMs, nowMs, nowMs + lifetimeMs_}, cipher, created);
    }
    // The same with the term given: a key created here lives from term.createdAtMs to
    // term.expiresAtMs instead of `lifetime` from nowMs.
    Result<ActiveKey*> acquire(const Digest& lookup, std::string_view contract, const KeyTerm& term,
                               SivCipher& cipher, std::vector<KeyRecord>& created);

    // The writer stored these keys: they may be evicted from now on.
    void committedKeys(const std::vector<StoredKeyRef>& keys);
    // Drops keys that were shredded (forget, retention) so that no new event uses them.
    void forget(const std::unordered_set<std::string>& keyLinks);
    // Drops directory entries of keys that expired before `nowMs`.
    void prune(int64_t nowMs);

    // When on, the first use of every stored key (one made before this cache) is recorded, by
    // rowid, for takeFirstUses(): a batch job lists the keys a run used. Off by default (the
    // daemon never takes them).
    void reportFirstUses(bool on) { reportFirstUses_ = on; }
    std::vector<int64_t> takeFirstUses() { return std::exchange(firstUses_, {}); }

    // Hints that `lookup` is needed soon (the next few events), in three steps as its event
    // comes nearer, each reading what the step before brought into the CPU's caches: its
    // bucket (prefetch), then the directory slot the bucket points to (prefetchSlot), then the
    // unwrapped key that slot points to (prefetchKey). A lookup is three dependent loads, each
    // a cache miss when the directory is bigger than the caches (a job's day keys: every row
    // has another key); started early, acquire() finds them loaded.
    void prefetch(const Digest& lookup) const
    {
        if (!buckets_.empty())
            __builtin_prefetch(&buckets_[bucketOf(lookup)]);
    }
    void prefetchSlot(const Digest& lookup) const;
    void prefetchKey(const Digest& lookup) const;

    size_t directorySize() const { return used_; }
    size_t residentSize() const { return resident_; }
    const KeyCacheStats& stats() const { return stats_; }

private:
    // The directory is an open-addressing table (linear probing) of 8-byte buckets pointing into
    // slots of 48 bytes: an HMAC output needs no further hashing, and a lookup touches one bucket
    // and one slot (a node-based map touched four or five lines, measured as the hottest spot of
    // the transform). The unwrapped keys live apart, in at most about `capacity` Residents, so
    // that a directory of a million keys costs 48 MB rather than the 230 MB it cost when every
    // slot held room for a key.
    using LookupPrefix = std::array<uint8_t, 16>;
    struct Slot {
        LookupPrefix lookup{};  // the lookup's first 128 bits: its bucket, tag and identity
        int64_t rowid = 0;      // 0: created here and not committed yet
        int64_t expiresAtMs = 0;
        // The key's subjectFingerprint while it is not resident: a key read back keeps the last
        // subject linked to it, so its next event does not link the same subject again.
        uint64_t subjectFingerprint = 0;
        uint32_t resident = 0;  // 1 + the index of its Resident; 0: the key is not in memory
        bool used = false;
        bool reported = false;  // reportFirstUses(): its first use was reported
    };
    static_assert(sizeof(Slot) == 48, "a directory entry is 48 bytes (docs/architecture.md, operations.md)");
    struct Resident {
        ActiveKey key;
        uint32_t slot = kNone;    // kNone: free
        uint32_t generation = 0;  // bumped when freed, to tell stale eviction entries
    };
    struct Bucket {
        uint32_t tag = 0;   // 32 more bits of the digest, to skip most slot reads
        uint32_t slot = 0;  // slot index + 1; 0: empty
    };
    static constexpr uint32_t kNone = UINT32_MAX;

    static size_t hashOf(const uint8_t* d)
    {
        uint64_t h;
        std::memcpy(&h, d, sizeof h);  // an HMAC output: already uniform
        return static_cast<size_t>(h);
    }
    size_t bucketOf(const Digest& d) const { return hashOf(d.data()) & (buckets_.size() - 1); }
    size_t bucketOf(const LookupPrefix& p) const { return hashOf(p.data()) & (buckets_.size() - 1); }
    static uint32_t tagOf(const uint8_t* d)
    {
        uint32_t t;
        std::memcpy(&t, d + 8, sizeof t);
        return t;
    }
    static bool sameLookup(const LookupPrefix& p, const Digest& d) { return std::memcmp(p.data(), d.data(), p.size()) == 0; }
    uint32_t find(const Digest& lookup) const;
    uint32_t findOrInsert(const Digest& lookup);
    void erase(uint32_t slot);
    void rehash(size_t buckets);

    // partitionByTerm(): makes `expiresAtMs` the term in use, reading it when it is not in the
    // directory, and then drops the least recently used terms while over the budget.
    Status useTerm(int64_t expiresAtMs);
    void dropTerms();

    Result<ActiveKey*> create(uint32_t slot, const Digest& lookup, std::string_view contract, const KeyTerm& term,
                              SivCipher& cipher, std::vector<KeyRecord>& created);
    Result<ActiveKey*> load(uint32_t slot, int64_t nowMs, SivCipher& cipher);
    Result<KeySealer*> sealer();
    // The Resident of `slot`, taken from the free ones when it has none.
    ActiveKey& residentKey(uint32_t slot);
    void dropKey(Slot& slot);
    // Evicts down to the capacity, never the key of `keep` (the one acquire() returns).
    void evict(uint32_t keep);

    size_t capacity_;
    int64_t lifetimeMs_;
    std::string kind_;
    const KeyWrapper& wrapper_;
    KeySource& source_;
    // This thread's randomness and master-key contexts for making and loading keys: a new key
    // costs one RAND_bytes call per about 40 keys and no AES-GCM key schedule.
    RandomPool random_;
    std::optional<KeySealer> sealer_;  // made on first use
    // Slots and Residents live in fixed chunks: the directory grows without ever copying itself
    // (a vector's doubling briefly needed three times the memory) and without moving a key.
    static constexpr uint32_t kChunkBits = 10;
    static constexpr uint32_t kChunkMask = (1u << kChunkBits) - 1;
    Slot& slot(uint32_t index) { return chunks_[index >> kChunkBits][index & kChunkMask]; }
    const Slot& slot(uint32_t index) const { return chunks_[index >> kChunkBits][index & kChunkMask]; }
    Resident& resident(uint32_t index) { return residentChunks_[index >> kChunkBits][index & kChunkMask]; }
    const Resident& resident(uint32_t index) const { return residentChunks_[index >> kChunkBits][index & kChunkMask]; }
    uint32_t newSlot();

    std::vector<std::unique_ptr<Slot[]>> chunks_;
    uint32_t slotCount_ = 0;
    std::vector<uint32_t> freeSlots_;
    std::vector<Bucket> buckets_;  // a power of two, at most 70% used
    size_t used_ = 0;
    std::vector<std::unique_ptr<Resident[]>> residentChunks_;
    uint32_t residentCount_ = 0;
    std::vector<uint32_t> freeResidents_;
    std::deque<std::pair<uint32_t, uint32_t>> order_;  // (resident, generation) oldest first
    size_t resident_ = 0;
    // Set when eviction went round every resident key and found all of them pinned: further
    // evictions wait for the writer to unpin some (committedKeys) instead of going round again
    // for every new key, which would make a burst of new keys quadratic.
    bool allPinned_ = false;
    bool reportFirstUses_ = false;
    std::vector<int64_t> firstUses_;
    // partitionByTerm(): 0 when off.
    size_t termBudget_ = 0;
    std::function<bool(const Digest&)> mine_;
    std::unordered_map<int64_t, uint64_t> terms_;  // expiry -> last use (termClock_)
    uint64_t termClock_ = 0;
    int64_t currentTerm_ = std::numeric_limits<int64_t>::min();
    KeyCacheStats stats_;
};

}  // namespace sluice::privacy
