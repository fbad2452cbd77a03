#include "transform/db_key_source.h"

#include "store/state.h"

namespace sluice::transform {

Result<std::unique_ptr<DbKeySource>> DbKeySource::open(const std::string& databasePath)
{
    auto reader = store::KeyReader::open(databasePath);
    if (!reader)
        return reader.status();
    return std::unique_ptr<DbKeySource>(new DbKeySource(std::move(*reader)));
}

Status DbKeySource::forEachActive(std::string_view kind, int64_t nowMs, const Visit& visit)
{
    return reader_.forEachActive(kind, nowMs, visit);
}

Status DbKeySource::forEachExpiringAt(std::string_view kind, int64_t expiresAtMs, const Visit& visit)
{
    return reader_.forEachExpiringAt(kind, expiresAtMs, visit);
}

Result<std::optional<privacy::KeySource::Found>> DbKeySource::fetch(int64_t rowid)
{
    if (!reading_) {
        SLUICE_RETURN_IF_ERROR(reader_.beginLookups());
        reading_ = true;
    }
    auto key = reader_.byRowid(rowid);
    if (!key)
        return key.status();
    if (!*key)
        return std::optional<Found>();
    Found f;
    f.keyLink = std::move((*key)->keyLink);
    f.keyId = (*key)->keyId;
    f.wrapped = std::move((*key)->wrapped);
    f.createdAtMs = (*key)->createdAtMs;
    f.expiresAtMs = (*key)->expiresAtMs;
    f.lookup = (*key)->lookup;
    return std::optional<Found>(std::move(f));
}

Status DbKeySource::endFetches()
{
    if (!reading_)
        return Status::ok();
    reading_ = false;
    return reader_.endLookups();
}

KeySourceFactory databaseKeySources(std::string path)
{
    return [path = std::move(path)]() -> Result<std::unique_ptr<privacy::KeySource>> {
        auto source = DbKeySource::open(path);
        if (!source)
            return source.status();
        return std::unique_ptr<privacy::KeySource>(std::move(*source));
    };
}

Status checkMasterKey(store::Db& db, const privacy::KeyWrapper& wrapper)
{
    auto stored = store::readMasterKeyCheck(db);
    if (!stored)
        return stored.status();
    SLUICE_RETURN_IF_ERROR(privacy::verifyMasterKey(wrapper, stored->value, stored->holdsKeys));
    if (stored->value)
        return Status::ok();
    auto made = wrapper.makeCheck();
    if (!made)
        return made.status();
    return store::recordMasterKeyCheck(db, *made);
}

}  // namespace sluice::transform
