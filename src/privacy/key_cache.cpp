#include "privacy/key_cache.h"

#include "privacy/random.h"

namespace sluice::privacy {

KeyCache::KeyCache(size_t capacity, int64_t lifetimeMs, std::string kind, const KeyWrapper& wrapper,
                   KeySource& source)
    : capacity_(capacity ? capacity : 1), lifetimeMs_(lifetimeMs), kind_(std::move(kind)), wrapper_(wrapper),
      source_(source)
{
    rehash(1024);
}

uint32_t KeyCache::find(const Digest& lookup) const
{
    const uint32_t tag = tagOf(lookup.data());
    for (size_t pos = bucketOf(lookup);; pos = (pos + 1) & (buckets_.size() - 1)) {
        const Bucket& b = buckets_[pos];
        if (b.slot == 0)
            return kNone;
        if (b.tag == tag && sameLookup(slot(b.slot - 1).lookup, lookup))
            return b.slot - 1;
    }
}

namespace {

// Starts loading every cache line of `object`.
template <typename T>
void prefetchLines(const T& object)
{
    const char* p = reinterpret_cast<const char*>(&object);
    for (size_t at = 0; at < sizeof(T); at += 64)
        __builtin_prefetch(p + at);
    __builtin_prefetch(p + sizeof(T) - 1);
}

}  // namespace

void KeyCache::prefetchSlot(const Digest& lookup) const
{
    if (buckets_.empty())
        return;
    // The first bucket of the probe whose tag matches: almost always the lookup's own slot
    // (the slot itself is what is not yet in the cache, so it is not compared here).
    const uint32_t tag = tagOf(lookup.data());
    for (size_t pos = bucketOf(lookup);; pos = (pos + 1) & (buckets_.size() - 1)) {
        const Bucket& b = buckets_[pos];
        if (b.slot == 0)
            return;
        if (b.tag == tag) {
            prefetchLines(slot(b.slot - 1));
            return;
        }
    }
}

void KeyCache::prefetchKey(const Digest& lookup) const
{
    if (buckets_.empty())
        return;
    const uint32_t index = find(lookup);
    if (index == kNone)
        return;
    const uint32_t r = slot(index).resident;
    if (r)
        prefetchLines(resident(r - 1).key);
}

uint32_t KeyCache::findOrInsert(const Digest& lookup)
{
    if ((used_ + 1) * 10 > buckets_.size() * 7)
        rehash(buckets_.size() * 2);
    const uint32_t tag = tagOf(lookup.data());
    size_t pos = bucketOf(lookup);
    for (;; pos = (pos + 1) & (buckets_.size() - 1)) {
        const Bucket& b = buckets_[pos];
        if (b.slot == 0)
            break;
        if (b.tag == tag && sameLookup(slot(b.slot - 1).lookup, lookup))
            return b.slot - 1;
    }
    uint32_t index;
    if (!freeSlots_.empty()) {
        index = freeSlots_.back();
        freeSlots_.pop_back();
    } else {
        index = newSlot();
    }
    Slot& s = slot(index);
    std::memcpy(s.lookup.data(), lookup.data(), s.lookup.size());
    s.rowid = 0;
    s.expiresAtMs = 0;
    s.resident = 0;
    s.subjectFingerprint = 0;
    s.used = true;
    s.reported = false;
    buckets_[pos] = Bucket{tag, index + 1};
    ++used_;
    return index;
}

uint32_t KeyCache::newSlot()
{
    if (slotCount_ == chunks_.size() << kChunkBits)
        chunks_.push_back(std::make_unique<Slot[]>(size_t{1} << kChunkBits));
    return slotCount_++;
}

void KeyCache::erase(uint32_t index)
{
    Slot& erased = slot(index);
    size_t mask = buckets_.size() - 1;
    size_t pos = bucketOf(erased.lookup);
    while (buckets_[pos].slot != index + 1)
        pos = (pos + 1) & mask;
    // Backward-shift deletion: pull later members of the probe run into the hole.
    size_t hole = pos;
    for (size_t j = (hole + 1) & mask; buckets_[j].slot != 0; j = (j + 1) & mask) {
        const size_t home = bucketOf(slot(buckets_[j].slot - 1).lookup);
        const bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            buckets_[hole] = buckets_[j];
            hole = j;
        }
    }
    buckets_[hole] = Bucket{};
    dropKey(erased);
    erased.used = false;
    freeSlots_.push_back(index);
    --used_;
}

void KeyCache::rehash(size_t size)
{
    buckets_.assign(size, Bucket{});
    for (uint32_t i = 0; i < slotCount_; ++i) {
        const Slot& s = slot(i);
        if (!s.used)
            continue;
        size_t pos = bucketOf(s.lookup);
        while (buckets_[pos].slot != 0)
            pos = (pos + 1) & (size - 1);
        buckets_[pos] = Bucket{tagOf(s.lookup.data()), i + 1};
    }
}

ActiveKey& KeyCache::residentKey(uint32_t index)
{
    Slot& s = slot(index);
    if (s.resident)
        return resident(s.resident - 1).key;
    uint32_t r;
    if (!freeResidents_.empty()) {
        r = freeResidents_.back();
        freeResidents_.pop_back();
    } else {
        if (residentCount_ == residentChunks_.size() << kChunkBits)
            residentChunks_.push_back(std::make_unique<Resident[]>(size_t{1} << kChunkBits));
        r = residentCount_++;
    }
    Resident& res = resident(r);
    res.slot = index;
    s.resident = r + 1;
    ++resident_;
    order_.emplace_back(r, res.generation);
    return res.key;
}

void KeyCache::dropKey(Slot& slot)
{
    if (!slot.resident)
        return;
    const uint32_t r = slot.resident - 1;
    Resident& res = resident(r);
    slot.subjectFingerprint = res.key.subjectFingerprint;
    res.key.siv = SivKey();  // wipes the key bytes
    res.slot = kNone;
    ++res.generation;
    freeResidents_.push_back(r);
    slot.resident = 0;
    --resident_;
}

Status KeyCache::preload(int64_t nowMs, const std::function<bool(const Digest&)>& mine)
{
    return source_.forEachActive(kind_, nowMs, [&](const Digest& lookup, int64_t rowid, int64_t expiresAtMs) {
        if (!mine(lookup))
            return;
        // Oldest first: a newer key for the same value replaces an older one.
        Slot& s = slot(findOrInsert(lookup));
        s.rowid = rowid;
        s.expiresAtMs = expiresAtMs;
    });
}

void KeyCache::partitionByTerm(size_t maxEntries, std::function<bool(const Digest&)> mine)
{
    termBudget_ = maxEntries ? maxEntries : 1;
    mine_ = std::move(mine);
}

Status KeyCache::useTerm(int64_t expiresAtMs)
{
    if (expiresAtMs == currentTerm_)
        return Status::ok();
    currentTerm_ = expiresAtMs;
    auto [term, fresh] = terms_.try_emplace(expiresAtMs, 0);
    term->second = ++termClock_;
    if (!fresh)
        return Status::ok();
    Status read = source_.forEachExpiringAt(kind_, expiresAtMs, [&](const Digest& lookup, int64_t rowid, int64_t expiry) {
        if (!mine_(lookup))
            return;
        Slot& s = slot(findOrInsert(lookup));
        // A slot already known is this cache's own key: resident, and its rowid set when the
        // writer reports it (committedKeys) even if the source has it already.
        if (s.rowid == 0 && !s.resident) {
            s.rowid = rowid;
            s.expiresAtMs = expiry;
        }
    });
    if (!read.isOk()) {
        terms_.erase(expiresAtMs);
        currentTerm_ = std::numeric_limits<int64_t>::min();
        return read;
    }
    ++stats_.termsRead;
    dropTerms();
    return Status::ok();
}

void KeyCache::dropTerms()
{
    while (used_ > termBudget_ && terms_.size() > 1) {
        auto victim = terms_.end();
        for (auto it = terms_.begin(); it != terms_.end(); ++it)
            if (it->first != currentTerm_ && (victim == terms_.end() || it->second < victim->second))
                victim = it;
        const int64_t expiry = victim->first;
        terms_.erase(victim);
        // Keys not committed yet stay: nothing could read them back. When the term is read
        // again they are found in the directory and keep their slots.
        for (uint32_t i = 0; i < slotCount_; ++i) {
            const Slot& s = slot(i);
            if (s.used && s.expiresAtMs == expiry && s.rowid != 0)
                erase(i);
        }
        ++stats_.termsDropped;
    }
}

Result<ActiveKey*> KeyCache::acquire(const Digest& lookup, std::string_view contract, const KeyTerm& term,
                                     SivCipher& cipher, std::vector<KeyRecord>& created)
{
    if (termBudget_)
        SLUICE_RETURN_IF_ERROR(useTerm(term.expiresAtMs));
    const int64_t nowMs = term.nowMs;
    const uint32_t index = findOrInsert(lookup);
    Slot& s = slot(index);
    if (s.expiresAtMs > nowMs) {
        if (s.resident) {
            ++stats_.hits;
            ActiveKey& key = resident(s.resident - 1).key;
            SLUICE_RETURN_IF_ERROR(cipher.setKey(key.siv));
            if (reportFirstUses_ && !s.reported) {
                s.reported = true;
                if (s.rowid)
                    firstUses_.push_back(s.rowid);
            }
            return &key;
        }
        if (s.rowid) {
            auto loaded = load(index, nowMs, cipher);
            if (!loaded)
                return loaded;
            // Null: gone (shredded) or no longer matching; a new key replaces it below.
            if (*loaded) {
                if (reportFirstUses_ && !s.reported) {
                    s.reported = true;
                    firstUses_.push_back(s.rowid);
                }
                if (resident_ > capacity_ && !allPinned_)
                    evict(index);
                return loaded;
            }
        }
    }
    auto made = create(index, lookup, contract, term, cipher, created);
    if (made && resident_ > capacity_ && !allPinned_)
        evict(index);
    if (made && termBudget_ && used_ > termBudget_)
        dropTerms();  // the terms in the directory grew by the keys made in them
    return made;
}

Result<ActiveKey*> KeyCache::load(uint32_t index, int64_t nowMs, SivCipher& cipher)
{
    Slot& slot = this->slot(index);
    auto found = source_.fetch(slot.rowid);
    if (!found)
        return found.status();
    if (!*found || !sameLookup(slot.lookup, (*found)->lookup) || (*found)->expiresAtMs <= nowMs)
        return static_cast<ActiveKey*>(nullptr);
    const KeySource::Found& f = **found;
    if (f.keyLink.size() != kKeyLinkSize)
        return Status::corruption("key link '" + f.keyLink.substr(0, 64) + "' is not a UUID");
    auto contexts = sealer();
    if (!contexts)
        return contexts.status();
    auto bytes = (*contexts)->unwrap(f.wrapped, f.keyLink);
    if (!bytes)
        return bytes.status().withContext("unwrapping key " + f.keyLink);
    auto siv = cipher.makeKey(bytes->view());
    if (!siv)
        return siv.status();
    ActiveKey& key = residentKey(index);
    std::memcpy(key.keyLink, f.keyLink.data(), kKeyLinkSize);
    key.keyId = f.keyId;
    key.subjectFingerprint = slot.subjectFingerprint;
    key.siv = std::move(*siv);
    ++stats_.loads;
    return &key;
}

Result<ActiveKey*> KeyCache::create(uint32_t index, const Digest& lookup, std::string_view contract,
                                    const KeyTerm& term, SivCipher& cipher, std::vector<KeyRecord>& created)
{
    auto contexts = sealer();
    if (!contexts)
        return contexts.status();
    auto bytes = random_.bytes(kSivKeySize);
    if (!bytes)
        return bytes.status();
    auto link = random_.uuidV4();
    if (!link)
        return link.status();
    auto keyId = random_.keyId();
    if (!keyId)
        return keyId.status();
    auto wrapped = (*contexts)->wrap(bytes->view(), *link, random_);
    if (!wrapped)
        return wrapped.status();
    auto siv = cipher.makeKey(bytes->view());
    if (!siv)
        return siv.status();

    KeyRecord record;
    record.keyLink = *link;
    record.keyId = *keyId;
    record.contract = std::string(contract);
    record.kind = kind_;
    record.lookup = lookup;
    record.wrapped = std::move(*wrapped);
    record.createdAtMs = term.createdAtMs;
    record.expiresAtMs = term.expiresAtMs;
    created.push_back(std::move(record));

    ActiveKey& key = residentKey(index);
    std::memcpy(key.keyLink, link->data(), kKeyLinkSize);
    key.keyId = *keyId;
    key.subjectFingerprint = 0;
    key.siv = std::move(*siv);
    Slot& s = slot(index);
    s.rowid = 0;  // pinned in memory until the writer reports where it stored it
    s.expiresAtMs = term.expiresAtMs;
    s.reported = true;  // a new key is reported through `created`
    ++stats_.created;
    return &key;
}

Result<KeySealer*> KeyCache::sealer()
{
    if (!sealer_) {
        auto made = wrapper_.sealer();
        if (!made)
            return made.status();
        sealer_.emplace(std::move(*made));
    }
    return &*sealer_;
}

void KeyCache::evict(uint32_t keep)
{
    // Oldest first; a key not yet committed goes back to the end of the line. Bounded, so a
    // cache smaller than two batches' worth of new keys grows for a while instead of spinning.
    size_t attempts = order_.size();
    while (resident_ > capacity_ && attempts-- > 0 && !order_.empty()) {
        const auto [r, generation] = order_.front();
        order_.pop_front();
        Resident& res = resident(r);
        if (res.slot == kNone || res.generation != generation)
            continue;  // a stale entry: evicted, forgotten or pruned since
        Slot& s = slot(res.slot);
        if (s.rowid == 0 || res.slot == keep) {
            order_.emplace_back(r, generation);
            continue;
        }
        dropKey(s);
        ++stats_.evicted;
    }
    allPinned_ = resident_ > capacity_;
}

void KeyCache::committedKeys(const std::vector<StoredKeyRef>& keys)
{
    for (const StoredKeyRef& k : keys) {
        const uint32_t index = find(k.lookup);
        if (index == kNone)
            continue;
        Slot& s = slot(index);
        // The slot may already hold a newer key for the same value; only its own record counts.
        if (s.resident && s.rowid == 0 && resident(s.resident - 1).key.link() == k.keyLink)
            s.rowid = k.rowid;
    }
    // Keys pinned until now may go: get back within the budget.
    allPinned_ = false;
    if (resident_ > capacity_)
        evict(kNone);
}

void KeyCache::forget(const std::unordered_set<std::string>& keyLinks)
{
    if (keyLinks.empty())
        return;
    // Only a resident key can be in use: the others are read back by rowid, and a shredded
    // key's row is gone.
    for (uint32_t r = 0; r < residentCount_; ++r) {
        const Resident& res = resident(r);
        if (res.slot != kNone && keyLinks.count(std::string(res.key.link()))) {
            erase(res.slot);
            ++stats_.forgotten;
        }
    }
}

void KeyCache::prune(int64_t nowMs)
{
    for (uint32_t i = 0; i < slotCount_; ++i) {
        const Slot& s = slot(i);
        if (s.used && s.expiresAtMs <= nowMs && s.rowid != 0)
            erase(i);
    }
}

}  // namespace sluice::privacy
