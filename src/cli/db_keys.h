// The database's wrapped keys as a privacy::WrappedKeySource, so that a StoredKeyRing decrypts
// stored values with the keys that still exist (sluicectl decrypt, reprocess).
#pragma once

#include <functional>
#include <optional>
#include <string_view>

#include "privacy/key_ring.h"
#include "store/db.h"
#include "store/key_table.h"

namespace sluice::cli {

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

}  // namespace sluice::cli
