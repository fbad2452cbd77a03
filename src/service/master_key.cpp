#include "service/master_key.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "core/encoding.h"
#include "core/wipe.h"
#include "privacy/key_wrap.h"
#include "privacy/random.h"

namespace sluice::service {
namespace {

// What the shipped unit's SetCredential= passes when its LoadCredential= file is missing
// (systemd/sluiced.service.in says why). Never a valid key: those are 32 bytes or 64 hex digits.
constexpr std::string_view kAbsentMarker = "absent";

bool isAbsentMarker(const std::filesystem::path& path)
{
    std::error_code ec;
    if (std::filesystem::file_size(path, ec) != kAbsentMarker.size() || ec)
        return false;  // read nothing else: it may be the key
    std::ifstream in(path, std::ios::binary);
    std::string text(kAbsentMarker.size(), '\0');
    return in.read(text.data(), static_cast<std::streamsize>(text.size())) && text == kAbsentMarker;
}

}  // namespace

Result<MasterKey> loadMasterKey(const config::Config& config, bool createIfMissing)
{
    namespace fs = std::filesystem;
    MasterKey key;
    std::error_code ec;
    const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
    bool credentialAbsent = false;
    if (credentials && *credentials && !config.privacy.masterKeyCredential.empty()) {
        const fs::path path = fs::path(credentials) / config.privacy.masterKeyCredential;
        credentialAbsent = isAbsentMarker(path);
        if (!credentialAbsent && fs::exists(path, ec)) {
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
    if (credentialAbsent) {
        // Started by the unit, whose LoadCredential= names <config dir>/master.key.
        where = config.configFile.empty() ? std::string("the file named by LoadCredential=")
                                          : (fs::path(config.configFile).parent_path() / "master.key").string();
        return Status::permission(
            "no master key: sluiced refuses to start without one. The unit's credential '" +
            config.privacy.masterKeyCredential + "' is absent: create " + where +
            " (as root: umask 077; head -c 32 /dev/urandom > " + where +
            "), then start sluiced again. Keep a copy: without it nothing encrypted can be read again.");
    }
    return Status::permission(
        "no master key: sluiced refuses to start without one. Put 32 random bytes (or 64 hex digits) in " + where +
        " (for example: umask 077; head -c 32 /dev/urandom > " + where +
        "), or pass it as the systemd credential '" + config.privacy.masterKeyCredential +
        "' (LoadCredential=). Keep a copy: without it nothing encrypted can be read again.");
}

}  // namespace sluice::service
