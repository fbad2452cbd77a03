// The database's wrapped keys as a privacy::WrappedKeySource, so that a StoredKeyRing decrypts
// stored values with the keys that still exist (sluicectl decrypt and reprocess, the replay of
// a session snapshot at start).
#pragma once

#include <functional>
#include <optional>
#include <string_view>

#include "privacy/key_ring.h"
#include "store/db.h"
#include "store/key_table.h"
#include "store/reprocess.h"

namespace sluice::transform {

// The database's keys, for a StoredKeyRing.
class DbWrappedKeys final : public privacy::WrappedKeySource {
public:
    explicit DbWrappedKeys(store::Db& db) : db_(db) {}

    Result<std::optional<Wrapped>> byLink(std::string_view keyLink) override
    {
        auto key = store::keyByLink(db_, keyLink);
        if (!key)
            return key.status();
        if (!*key)
            return std::optional<Wrapped>();
        return std::optional<Wrapped>(Wrapped{(*key)->keyId, std::move((*key)->wrapped)});
    }

    Result<std::optional<Shredded>> lastShred(std::string_view keyLink) override
    {
        auto shred = store::lastShredOf(db_, keyLink);
        if (!shred)
            return shred.status();
        if (!*shred)
            return std::optional<Shredded>();
        return std::optional<Shredded>(Shredded{(*shred)->atMs, std::move((*shred)->cause)});
    }

    Status forEachKeyId(const std::function<void(uint32_t, std::string_view)>& fn) override
    {
        return store::forEachKeyId(db_, fn);
    }

private:
    store::Db& db_;
};

// The database's keys for a StoredKeyRing that looks up a great many links (sluicectl reprocess):
// found through a store::KeyLinkIndex (one pass over the keys table at the start) instead of a
// scan of the keys table per link. It does not say why a key is gone: shred_log has no index on
// the links either, and a reprocess only counts the values it cannot decrypt.
class IndexedWrappedKeys final : public privacy::WrappedKeySource {
public:
    static Result<IndexedWrappedKeys> create(store::Db& db)
    {
        auto index = store::KeyLinkIndex::create(db);
        if (!index)
            return index.status();
        return IndexedWrappedKeys(db, std::move(*index));
    }

    Result<std::optional<Wrapped>> byLink(std::string_view keyLink) override
    {
        auto key = index_.byLink(keyLink);
        if (!key)
            return key.status();
        if (!*key)
            return std::optional<Wrapped>();
        return std::optional<Wrapped>(Wrapped{(*key)->keyId, std::move((*key)->wrapped)});
    }

    Result<std::optional<Shredded>> lastShred(std::string_view) override { return std::optional<Shredded>(); }

    Status forEachKeyId(const std::function<void(uint32_t, std::string_view)>& fn) override
    {
        return store::forEachKeyId(db_, fn);
    }

private:
    IndexedWrappedKeys(store::Db& db, store::KeyLinkIndex index) : db_(db), index_(std::move(index)) {}

    store::Db& db_;
    store::KeyLinkIndex index_;
};

}  // namespace sluice::transform
