#include "service/master_key.h"

#include <cstdlib>
#include <filesystem>

#include "core/encoding.h"
#include "core/wipe.h"
#include "privacy/key_wrap.h"
#include "privacy/random.h"

namespace sluice::service {

Result<MasterKey> loadMasterKey(const config::Config& config, bool createIfMissing)
{
    namespace fs = std::filesystem;
    MasterKey key;
    std::error_code ec;
    const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
    if (credentials && *credentials && !config.privacy.masterKeyCredential.empty()) {
        const fs::path path = fs::path(credentials) / config.privacy.masterKeyCredential;
        if (fs::exists(path, ec)) {
            auto bytes = privacy::readSecretFile(path.string(), privacy::kMasterKeySize);
            if (!bytes)
                return bytes.status();
            key.bytes = std::move(*bytes);
            key.source = path.string();
            return key;
        }
    }
    const std::string& file = config.privacy.masterKeyFile;
    if (!file.empty() && fs::exists(file, ec)) {
        auto bytes = privacy::readSecretFile(file, privacy::kMasterKeySize);
        if (!bytes)
            return bytes.status();
        key.bytes = std::move(*bytes);
        key.source = file;
        return key;
    }
    if (createIfMissing && !file.empty()) {
        auto fresh = privacy::randomBytes(privacy::kMasterKeySize);
        if (!fresh)
            return fresh.status();
        fs::create_directories(fs::path(file).parent_path(), ec);
        std::string hex = toHex(fresh->view()) + "\n";
        Status s = privacy::writeNewSecretFile(file, hex);
        wipe(hex);
        if (!s)
            return s;
        key.bytes = std::move(*fresh);
        key.source = file;
        key.created = true;
        return key;
    }
    std::string where = file.empty() ? std::string("privacy.master_key_file") : file;
    return Status::permission(
        "no master key: sluiced refuses to start without one. Put 32 random bytes (or 64 hex digits) in " + where +
        " (for example: umask 077; head -c 32 /dev/urandom > " + where +
        "), or pass it as the systemd credential '" + config.privacy.masterKeyCredential +
        "' (LoadCredential=). Keep a copy: without it nothing encrypted can be read again.");
}

}  // namespace sluice::service
