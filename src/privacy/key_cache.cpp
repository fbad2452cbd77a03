#include "privacy/key_cache.h"

#include <cstring>

#include "privacy/random.h"

namespace sluice::privacy {

KeyCache::KeyCache(size_t capacity, int64_t lifetimeMs, std::string kind, const KeyWrapper& wrapper,
                   KeySource& source)
    : capacity_(capacity ? capacity : 1), lifetimeMs_(lifetimeMs), kind_(std::move(kind)), wrapper_(wrapper),
      source_(source)
{
    entries_.reserve(std::min<size_t>(capacity_, 1 << 16));
}

Result<ActiveKey*> KeyCache::acquire(const Digest& lookup, std::string_view contract, int64_t nowMs,
                                     uint64_t batchId, SivCipher& cipher, std::vector<KeyRecord>& created)
{
    auto it = entries_.find(lookup);
    if (it != entries_.end() && nowMs < it->second.expiresAtMs) {
        ++stats_.hits;
        SLUICE_RETURN_IF_ERROR(cipher.setKey(it->second.siv));
        return &it->second;
    }
    if (it == entries_.end()) {
        auto found = source_.findActive(lookup, kind_, nowMs);
        if (!found)
            return found.status();
        if (*found)
            return load(lookup, **found, cipher);
    }
    return create(lookup, contract, nowMs, batchId, cipher, created);
}

ActiveKey& KeyCache::insert(const Digest& lookup)
{
    auto [it, inserted] = entries_.try_emplace(lookup);
    if (inserted) {
        order_.push_back(lookup);
        if (entries_.size() > capacity_)
            evict();
    }
    return it->second;
}

void KeyCache::evict()
{
    // Oldest first; a key of an uncommitted batch goes back to the end of the line. Bounded, so a
    // cache smaller than two batches' keys grows for a moment instead of spinning.
    size_t attempts = order_.size();
    while (entries_.size() > capacity_ && attempts-- > 0 && !order_.empty()) {
        Digest victim = order_.front();
        order_.pop_front();
        auto it = entries_.find(victim);
        if (it == entries_.end())
            continue;
        if (it->second.createdInBatch > committedThrough_) {
            order_.push_back(victim);
            continue;
        }
        entries_.erase(it);
        ++stats_.evicted;
    }
}

Result<ActiveKey*> KeyCache::load(const Digest& lookup, const KeySource::Found& found, SivCipher& cipher)
{
    if (found.keyLink.size() != kKeyLinkSize)
        return Status::corruption("key link '" + found.keyLink.substr(0, 64) + "' is not a UUID");
    auto key = wrapper_.unwrap(found.wrapped, found.keyLink);
    if (!key)
        return key.status().withContext("unwrapping key " + found.keyLink);
    auto siv = cipher.makeKey(key->view());
    if (!siv)
        return siv.status();
    ActiveKey& entry = insert(lookup);
    std::memcpy(entry.keyLink, found.keyLink.data(), kKeyLinkSize);
    entry.keyId = found.keyId;
    entry.createdAtMs = found.createdAtMs;
    entry.expiresAtMs = found.expiresAtMs;
    entry.createdInBatch = 0;
    entry.subjectFingerprint = 0;
    entry.siv = std::move(*siv);
    ++stats_.loads;
    return &entry;
}

Result<ActiveKey*> KeyCache::create(const Digest& lookup, std::string_view contract, int64_t nowMs, uint64_t batchId,
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

    ActiveKey& entry = insert(lookup);
    std::memcpy(entry.keyLink, link->data(), kKeyLinkSize);
    entry.keyId = *keyId;
    entry.createdAtMs = nowMs;
    entry.expiresAtMs = nowMs + lifetimeMs_;
    entry.createdInBatch = batchId;
    entry.subjectFingerprint = 0;
    entry.siv = std::move(*siv);
    ++stats_.created;
    return &entry;
}

void KeyCache::forget(const std::unordered_set<std::string>& keyLinks)
{
    if (keyLinks.empty())
        return;
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (keyLinks.count(std::string(it->second.link()))) {
            it = entries_.erase(it);
            ++stats_.forgotten;
        } else {
            ++it;
        }
    }
}

}  // namespace sluice::privacy
