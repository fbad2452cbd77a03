// KeyCache: the per-shard directory of active data keys and the bounded set of unwrapped ones.
// The database side is an in-memory KeySource holding what a writer would have stored.
#include <catch2/catch.hpp>

#include <map>

#include "privacy/key_cache.h"
#include "privacy/random.h"

using namespace sluice;
using namespace sluice::privacy;

namespace {

Digest digestOf(uint32_t n)
{
    Digest d{};
    // Spread n over the bytes the directory hashes (0..7) and tags (8..11), and make collisions
    // in the low bits likely so that probing and deletion are exercised.
    for (int i = 0; i < 32; ++i)
        d[static_cast<size_t>(i)] = static_cast<uint8_t>((n * 2654435761u) >> ((i % 4) * 8)) ^ static_cast<uint8_t>(i);
    d[0] = static_cast<uint8_t>(n & 0x0f);  // 16 home buckets only: long probe runs
    return d;
}

// Committed keys, as the writer would have stored them.
class MemorySource final : public KeySource {
public:
    Status forEachActive(std::string_view kind, int64_t nowMs, const Visit& visit) override
    {
        for (const auto& [rowid, k] : rows)
            if (k.kind == kind && k.expiresAtMs > nowMs)
                visit(k.lookup, rowid, k.expiresAtMs);
        return Status::ok();
    }
    Status forEachExpiringAt(std::string_view kind, int64_t expiresAtMs, const Visit& visit) override
    {
        ++termReads;
        for (const auto& [rowid, k] : rows)
            if (k.kind == kind && k.expiresAtMs == expiresAtMs)
                visit(k.lookup, rowid, k.expiresAtMs);
        return Status::ok();
    }
    Result<std::optional<Found>> fetch(int64_t rowid) override
    {
        ++fetches;
        auto it = rows.find(rowid);
        if (it == rows.end())
            return std::optional<Found>();
        const KeyRecord& k = it->second;
        return std::optional<Found>(Found{k.keyLink, k.keyId, k.wrapped, k.createdAtMs, k.expiresAtMs, k.lookup});
    }
    // Stores keys like the writer: rowids assigned, refs for committedKeys().
    std::vector<StoredKeyRef> store(std::vector<KeyRecord>& created)
    {
        std::vector<StoredKeyRef> refs;
        for (KeyRecord& k : created) {
            k.rowid = nextRowid++;
            rows[k.rowid] = k;
            refs.push_back(StoredKeyRef{k.lookup, k.keyLink, k.rowid});
        }
        created.clear();
        return refs;
    }

    std::map<int64_t, KeyRecord> rows;
    int64_t nextRowid = 1;
    int fetches = 0;
    int termReads = 0;
};

struct KeyCacheFixture {
    KeyCacheFixture()
        : wrapper(KeyWrapper::create(randomBytes(32).value()).value()), cipher(SivCipher::create().value())
    {
    }

    std::string encrypt(ActiveKey& key, std::string_view plaintext)
    {
        REQUIRE(cipher.setKey(key.siv).isOk());
        std::string out;
        REQUIRE(cipher.encrypt(plaintext, out).isOk());
        return out;
    }

    KeyWrapper wrapper;
    SivCipher cipher;
    MemorySource source;
    std::vector<KeyRecord> created;
};

std::string valueOf(uint32_t n)
{
    std::string v = "v";
    v += std::to_string(n);
    return v;
}

constexpr int64_t kLifetime = 1000;
constexpr int64_t kNow = 1'000'000;

}  // namespace

TEST_CASE("the first event of a value creates a key; later ones reuse it until it expires", "[key_cache]")
{
    KeyCacheFixture f;
    KeyCache cache(100, kLifetime, "data", f.wrapper, f.source);
    auto first = cache.acquire(digestOf(1), "c/x/1.0.0", kNow, f.cipher, f.created);
    REQUIRE(first);
    REQUIRE(f.created.size() == 1);
    CHECK(f.created[0].kind == "data");
    CHECK(f.created[0].contract == "c/x/1.0.0");
    CHECK(f.created[0].lookup == digestOf(1));
    CHECK(f.created[0].expiresAtMs == kNow + kLifetime);
    CHECK(std::string((*first)->link()) == f.created[0].keyLink);
    const std::string link = f.created[0].keyLink;
    const std::string c1 = f.encrypt(**first, "ann@example.com");

    auto again = cache.acquire(digestOf(1), "c/x/1.0.0", kNow + kLifetime - 1, f.cipher, f.created);
    REQUIRE(again);
    CHECK(f.created.size() == 1);  // nothing new
    CHECK(std::string((*again)->link()) == link);
    CHECK(f.encrypt(**again, "ann@example.com") == c1);  // same key, same ciphertext

    auto rotated = cache.acquire(digestOf(1), "c/x/1.0.0", kNow + kLifetime, f.cipher, f.created);
    REQUIRE(rotated);
    REQUIRE(f.created.size() == 2);
    CHECK(std::string((*rotated)->link()) != link);
    CHECK(f.encrypt(**rotated, "ann@example.com") != c1);  // a new key: a different ciphertext
    CHECK(cache.stats().created == 2);
    CHECK(cache.stats().hits == 1);
}

TEST_CASE("evicted keys come back from the database by rowid, uncommitted ones are never evicted", "[key_cache]")
{
    KeyCacheFixture f;
    KeyCache cache(8, kLifetime, "data", f.wrapper, f.source);
    std::map<uint32_t, std::string> links, ciphertexts;
    for (uint32_t n = 0; n < 40; ++n) {
        auto key = cache.acquire(digestOf(n), "c", kNow, f.cipher, f.created);
        REQUIRE(key);
        links[n] = std::string((*key)->link());
        ciphertexts[n] = f.encrypt(**key, valueOf(n));
    }
    // Nothing committed yet: all 40 must still be in memory, over the capacity of 8.
    CHECK(cache.residentSize() == 40);
    cache.committedKeys(f.source.store(f.created));
    // The next acquisitions evict down to the capacity; every value still gets its own key back.
    for (uint32_t n = 0; n < 40; ++n) {
        auto key = cache.acquire(digestOf(n), "c", kNow + 1, f.cipher, f.created);
        REQUIRE(key);
        CHECK(std::string((*key)->link()) == links[n]);
        CHECK(f.encrypt(**key, valueOf(n)) == ciphertexts[n]);
    }
    CHECK(f.created.empty());
    CHECK(cache.residentSize() <= 8);
    CHECK(cache.stats().evicted > 0);
    CHECK(cache.stats().loads > 0);
    CHECK(cache.directorySize() == 40);
}

TEST_CASE("a key loaded back remembers the last subject linked to it; a new key starts with none", "[key_cache]")
{
    KeyCacheFixture f;
    KeyCache cache(1, kLifetime, "data", f.wrapper, f.source);
    auto a = cache.acquire(digestOf(1), "c", kNow, f.cipher, f.created);
    REQUIRE(a);
    CHECK((*a)->subjectFingerprint == 0);
    (*a)->subjectFingerprint = 0x1234'5678'9abc'def1;  // what the transform does when it links a subject
    cache.committedKeys(f.source.store(f.created));
    // B evicts A; A comes back from the database with its fingerprint (no second link for the same
    // subject), B keeps its own when it is evicted and loaded in turn.
    auto b = cache.acquire(digestOf(2), "c", kNow, f.cipher, f.created);
    REQUIRE(b);
    CHECK((*b)->subjectFingerprint == 0);
    (*b)->subjectFingerprint = 0x0fed'cba9'8765'4321;
    cache.committedKeys(f.source.store(f.created));
    auto again = cache.acquire(digestOf(1), "c", kNow + 1, f.cipher, f.created);
    REQUIRE(again);
    CHECK(cache.stats().loads == 1);
    CHECK((*again)->subjectFingerprint == 0x1234'5678'9abc'def1);
    auto againB = cache.acquire(digestOf(2), "c", kNow + 1, f.cipher, f.created);
    REQUIRE(againB);
    CHECK(cache.stats().loads == 2);
    CHECK((*againB)->subjectFingerprint == 0x0fed'cba9'8765'4321);
    // Once A expires its slot gets a new key, which has linked no subject yet, even after an eviction.
    auto renewed = cache.acquire(digestOf(1), "c", kNow + kLifetime, f.cipher, f.created);
    REQUIRE(renewed);
    REQUIRE(f.created.size() == 1);
    CHECK((*renewed)->subjectFingerprint == 0);
    cache.committedKeys(f.source.store(f.created));
    REQUIRE(cache.acquire(digestOf(2), "c", kNow + kLifetime, f.cipher, f.created));
    auto renewedAgain = cache.acquire(digestOf(1), "c", kNow + kLifetime + 1, f.cipher, f.created);
    REQUIRE(renewedAgain);
    CHECK((*renewedAgain)->subjectFingerprint == 0);
}

TEST_CASE("the key an acquire() loads back is never the one its eviction drops", "[key_cache]")
{
    KeyCacheFixture f;
    KeyCache cache(1, kLifetime, "data", f.wrapper, f.source);
    auto b = cache.acquire(digestOf(2), "c", kNow, f.cipher, f.created);
    REQUIRE(b);
    const std::string linkB((*b)->link());
    const std::string cipherB = f.encrypt(**b, "bob");
    cache.committedKeys(f.source.store(f.created));
    f.created.clear();
    // A new key, not committed: pinned; B is evicted to make room.
    REQUIRE(cache.acquire(digestOf(1), "c", kNow, f.cipher, f.created));
    CHECK(cache.stats().evicted == 1);
    // B comes back from the database while A is pinned: over the capacity, but B stays.
    auto again = cache.acquire(digestOf(2), "c", kNow + 1, f.cipher, f.created);
    REQUIRE(again);
    CHECK(cache.stats().loads == 1);
    CHECK(std::string((*again)->link()) == linkB);
    CHECK(f.encrypt(**again, "bob") == cipherB);
    CHECK(cache.residentSize() == 2);
    // Once A is committed the cache gets back within its capacity.
    cache.committedKeys(f.source.store(f.created));
    CHECK(cache.residentSize() == 1);
}

TEST_CASE("a restarted cache finds active keys through the directory it preloads", "[key_cache]")
{
    KeyCacheFixture f;
    std::map<uint32_t, std::string> links;
    {
        KeyCache cache(100, kLifetime, "data", f.wrapper, f.source);
        for (uint32_t n = 0; n < 50; ++n)
            links[n] = std::string((*cache.acquire(digestOf(n), "c", kNow, f.cipher, f.created))->link());
        cache.committedKeys(f.source.store(f.created));
    }
    KeyCache restarted(100, kLifetime, "data", f.wrapper, f.source);
    REQUIRE(restarted.preload(kNow + 1, [](const Digest& d) { return d[1] % 2 == 0; }).isOk());
    size_t mine = 0;
    for (uint32_t n = 0; n < 50; ++n) {
        const bool inShard = digestOf(n)[1] % 2 == 0;
        mine += inShard;
        auto key = restarted.acquire(digestOf(n), "c", kNow + 1, f.cipher, f.created);
        REQUIRE(key);
        // Keys of this shard are found again; values of the other shard are unknown here.
        CHECK((std::string((*key)->link()) == links[n]) == inShard);
    }
    CHECK(f.created.size() == 50 - mine);
    // After expiry the directory offers nothing: a preload at a later time finds no key.
    KeyCache later(100, kLifetime, "data", f.wrapper, f.source);
    REQUIRE(later.preload(kNow + 5 * kLifetime, [](const Digest&) { return true; }).isOk());
    CHECK(later.directorySize() == 0);
}

TEST_CASE("forgotten and pruned keys leave the directory; the rest stay reachable", "[key_cache]")
{
    KeyCacheFixture f;
    KeyCache cache(1000, kLifetime, "data", f.wrapper, f.source);
    std::map<uint32_t, std::string> links;
    for (uint32_t n = 0; n < 300; ++n)  // forces growth of the table and long probe runs
        links[n] = std::string((*cache.acquire(digestOf(n), "c", kNow + (n % 2) * 500, f.cipher, f.created))->link());
    cache.committedKeys(f.source.store(f.created));
    REQUIRE(cache.directorySize() == 300);

    std::unordered_set<std::string> forgotten;
    for (uint32_t n = 0; n < 300; n += 3)
        forgotten.insert(links[n]);
    cache.forget(forgotten);
    CHECK(cache.directorySize() == 200);
    CHECK(cache.stats().forgotten == 100);

    cache.prune(kNow + kLifetime);  // the even ones (created at kNow) have expired
    for (uint32_t n = 0; n < 300; ++n) {
        auto key = cache.acquire(digestOf(n), "c", kNow + kLifetime, f.cipher, f.created);
        REQUIRE(key);
        const bool kept = n % 3 != 0 && n % 2 == 1;
        CHECK((std::string((*key)->link()) == links[n]) == kept);
    }
}

TEST_CASE("a key shredded in the database is replaced, not resurrected", "[key_cache]")
{
    KeyCacheFixture f;
    KeyCache cache(1, kLifetime, "data", f.wrapper, f.source);
    const std::string a = std::string((*cache.acquire(digestOf(1), "c", kNow, f.cipher, f.created))->link());
    cache.committedKeys(f.source.store(f.created));
    (void)cache.acquire(digestOf(2), "c", kNow, f.cipher, f.created);  // evicts the first (capacity 1)
    cache.committedKeys(f.source.store(f.created));
    f.source.rows.erase(1);  // shredded by `sluicectl forget` in another process
    auto key = cache.acquire(digestOf(1), "c", kNow + 1, f.cipher, f.created);
    REQUIRE(key);
    CHECK(std::string((*key)->link()) != a);
    CHECK(f.created.size() == 1);
}

TEST_CASE("a directory by term reads a term when first used and drops the least recently used", "[key_cache]")
{
    KeyCacheFixture f;
    KeyCache cache(100, kLifetime, "data", f.wrapper, f.source);
    cache.partitionByTerm(10, [](const Digest&) { return true; });
    // Day d's keys expire at d * 1000; a lookup names its day, as a job's does.
    auto term = [](int64_t day) { return KeyTerm{day * 1000 - 500, day * 1000 - 500, day * 1000}; };
    auto lookup = [](int64_t day, uint32_t n) { return digestOf(static_cast<uint32_t>(day) * 100 + n); };
    std::map<std::pair<int64_t, uint32_t>, std::string> links;
    auto useDay = [&](int64_t day, uint32_t values) {
        for (uint32_t n = 0; n < values; ++n) {
            auto key = cache.acquire(lookup(day, n), "c", term(day), f.cipher, f.created);
            REQUIRE(key);
            auto [it, fresh] = links.try_emplace({day, n}, std::string((*key)->link()));
            CHECK(it->second == std::string((*key)->link()));  // a value keeps its key of the day
        }
    };
    useDay(1, 8);
    cache.committedKeys(f.source.store(f.created));
    useDay(2, 8);  // its third key takes the directory over the budget: day 1 leaves
    cache.committedKeys(f.source.store(f.created));
    CHECK(cache.stats().termsDropped == 1);
    CHECK(cache.directorySize() == 8);
    useDay(3, 1);
    CHECK(cache.stats().termsRead == 3);
    CHECK(cache.stats().termsDropped == 1);
    CHECK(cache.directorySize() == 9);
    cache.committedKeys(f.source.store(f.created));

    // Day 1 again: read back from the source, the same keys, none made.
    const int64_t made = static_cast<int64_t>(cache.stats().created);
    useDay(1, 8);
    CHECK(f.created.empty());
    CHECK(static_cast<int64_t>(cache.stats().created) == made);
    CHECK(cache.stats().termsRead == 4);
    CHECK(f.source.termReads == 4);
    CHECK(cache.directorySize() <= 10);

    // Keys not committed yet stay when their term is dropped, and are still found after.
    useDay(4, 6);  // pinned
    useDay(5, 6);  // day 4 is dropped: all but its pinned keys
    CHECK(cache.directorySize() >= 12);
    const size_t before = f.created.size();
    useDay(4, 6);  // read again: the pinned keys answer, nothing new is made
    CHECK(f.created.size() == before);
    cache.committedKeys(f.source.store(f.created));
    useDay(2, 8);
    CHECK(f.created.empty());
    CHECK(cache.stats().termsDropped >= 3);
}
