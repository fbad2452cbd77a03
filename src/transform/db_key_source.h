// The committed keys of a sluice database as the key caches see them: one read-only
// connection per lane (each lane's KeyCache reads from its own thread).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "privacy/key_cache.h"
#include "privacy/key_wrap.h"
#include "store/db.h"
#include "store/key_table.h"

namespace sluice::transform {

class DbKeySource final : public privacy::KeySource {
public:
    static Result<std::unique_ptr<DbKeySource>> open(const std::string& databasePath);

    Status forEachActive(std::string_view kind, int64_t nowMs, const Visit& visit) override;
    Status forEachExpiringAt(std::string_view kind, int64_t expiresAtMs, const Visit& visit) override;
    // The fetches until endFetches() share one read transaction.
    Result<std::optional<Found>> fetch(int64_t rowid) override;
    Status endFetches() override;

private:
    explicit DbKeySource(store::KeyReader reader) : reader_(std::move(reader)) {}
    store::KeyReader reader_;
    bool reading_ = false;  // a read transaction is open
};

// Makes the key source of one lane; called once per lane when a Transformer is created.
using KeySourceFactory = std::function<Result<std::unique_ptr<privacy::KeySource>>()>;

// A factory of DbKeySources over the database at `path`.
KeySourceFactory databaseKeySources(std::string path);

// The master key against the database's check value: kPermission when it does not match (or
// the check is missing while keys exist); a database without one gets it recorded. The daemon's
// database and a batch job's key store and work database alike.
Status checkMasterKey(store::Db& db, const privacy::KeyWrapper& wrapper);

}  // namespace sluice::transform
