#include "privacy/key_cache.h"

#include "privacy/random.h"

namespace sluice::privacy {

KeyCache::KeyCache(size_t capacity, int64_t lifetimeMs, std::string kind, const KeyWrapper& wrapper,
                   KeySource& source)
    : capacity_(capacity ? capacity : 1), lifetimeMs_(lifetimeMs), kind_(std::move(kind)), wrapper_(wrapper),
      source_(source)
{
}

Status KeyCache::preload(int64_t nowMs, const std::function<bool(const Digest&)>& mine)
{
    return source_.forEachActive(kind_, nowMs, [&](const Digest& lookup, int64_t rowid, int64_t expiresAtMs) {
        if (!mine(lookup))
            return;
        // Oldest first: a newer key for the same value replaces an older one.
        Slot& slot = slots_[lookup];
        slot.rowid = rowid;
        slot.expiresAtMs = expiresAtMs;
    });
}

Result<ActiveKey*> KeyCache::acquire(const Digest& lookup, std::string_view contract, int64_t nowMs, SivCipher& cipher,
                                     std::vector<KeyRecord>& created)
{
    Slot& slot = slots_[lookup];
    if (slot.expiresAtMs > nowMs) {
        if (slot.key) {
            ++stats_.hits;
            SLUICE_RETURN_IF_ERROR(cipher.setKey(slot.key->siv));
            return slot.key.get();
        }
        if (slot.rowid) {
            auto loaded = load(slot, lookup, nowMs, cipher);
            if (!loaded || *loaded)
                return loaded;
            // Gone (shredded) or no longer matching: a new key replaces it.
        }
    }
    return create(slot, lookup, contract, nowMs, cipher, created);
}

Result<ActiveKey*> KeyCache::load(Slot& slot, const Digest& lookup, int64_t nowMs, SivCipher& cipher)
{
    auto found = source_.fetch(slot.rowid);
    if (!found)
        return found.status();
    if (!*found || (*found)->lookup != lookup || (*found)->expiresAtMs <= nowMs)
        return static_cast<ActiveKey*>(nullptr);
    const KeySource::Found& f = **found;
    if (f.keyLink.size() != kKeyLinkSize)
        return Status::corruption("key link '" + f.keyLink.substr(0, 64) + "' is not a UUID");
    auto bytes = wrapper_.unwrap(f.wrapped, f.keyLink);
    if (!bytes)
        return bytes.status().withContext("unwrapping key " + f.keyLink);
    auto siv = cipher.makeKey(bytes->view());
    if (!siv)
        return siv.status();
    auto key = std::make_unique<ActiveKey>();
    std::memcpy(key->keyLink, f.keyLink.data(), kKeyLinkSize);
    key->keyId = f.keyId;
    key->createdAtMs = f.createdAtMs;
    key->expiresAtMs = f.expiresAtMs;
    key->siv = std::move(*siv);
    slot.key = std::move(key);
    ++stats_.loads;
    ActiveKey* result = slot.key.get();
    makeResident(lookup);
    return result;
}

Result<ActiveKey*> KeyCache::create(Slot& slot, const Digest& lookup, std::string_view contract, int64_t nowMs,
                                    SivCipher& cipher, std::vector<KeyRecord>& created)
{
    auto bytes = randomBytes(kSivKeySize);
    if (!bytes)
        return bytes.status();
    auto link = uuidV4();
    if (!link)
        return link.status();
    auto keyId = randomKeyId();
    if (!keyId)
        return keyId.status();
    auto wrapped = wrapper_.wrap(bytes->view(), *link);
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
    record.createdAtMs = nowMs;
    record.expiresAtMs = nowMs + lifetimeMs_;
    created.push_back(std::move(record));

    const bool wasResident = slot.key != nullptr;
    auto key = std::make_unique<ActiveKey>();
    std::memcpy(key->keyLink, link->data(), kKeyLinkSize);
    key->keyId = *keyId;
    key->createdAtMs = nowMs;
    key->expiresAtMs = nowMs + lifetimeMs_;
    key->siv = std::move(*siv);
    slot.key = std::move(key);
    slot.rowid = 0;  // pinned in memory until the writer reports where it stored it
    slot.expiresAtMs = nowMs + lifetimeMs_;
    ++stats_.created;
    ActiveKey* result = slot.key.get();
    if (!wasResident)
        makeResident(lookup);
    return result;
}

void KeyCache::makeResident(const Digest& lookup)
{
    order_.push_back(lookup);
    ++resident_;
    if (resident_ > capacity_)
        evict();
}

void KeyCache::evict()
{
    // Oldest first; a key not yet committed goes back to the end of the line. Bounded, so a
    // cache smaller than two batches' worth of new keys grows for a while instead of spinning.
    size_t attempts = order_.size();
    while (resident_ > capacity_ && attempts-- > 0 && !order_.empty()) {
        Digest victim = order_.front();
        order_.pop_front();
        auto it = slots_.find(victim);
        if (it == slots_.end() || !it->second.key)
            continue;  // a stale entry: already evicted, forgotten or pruned
        if (it->second.rowid == 0) {
            order_.push_back(victim);
            continue;
        }
        it->second.key.reset();
        --resident_;
        ++stats_.evicted;
    }
}

void KeyCache::committedKeys(const std::vector<StoredKeyRef>& keys)
{
    for (const StoredKeyRef& k : keys) {
        auto it = slots_.find(k.lookup);
        // The slot may already hold a newer key for the same value; only its own record counts.
        if (it != slots_.end() && it->second.key && it->second.rowid == 0 && it->second.key->link() == k.keyLink)
            it->second.rowid = k.rowid;
    }
}

void KeyCache::forget(const std::unordered_set<std::string>& keyLinks)
{
    if (keyLinks.empty())
        return;
    for (auto it = slots_.begin(); it != slots_.end();) {
        if (it->second.key && keyLinks.count(std::string(it->second.key->link()))) {
            --resident_;
            it = slots_.erase(it);
            ++stats_.forgotten;
        } else {
            ++it;
        }
    }
}

void KeyCache::prune(int64_t nowMs)
{
    for (auto it = slots_.begin(); it != slots_.end();) {
        if (it->second.expiresAtMs <= nowMs && it->second.rowid != 0) {
            if (it->second.key)
                --resident_;
            it = slots_.erase(it);
        } else {
            ++it;
        }
    }
}

}  // namespace sluice::privacy
