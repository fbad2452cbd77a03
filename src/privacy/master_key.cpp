#include "privacy/master_key.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "core/encoding.h"
#include "core/wipe.h"
#include "privacy/key_wrap.h"
#include "privacy/random.h"

namespace sluice::privacy {
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

Result<MasterKey> loadMasterKey(const MasterKeyLocation& where, bool createIfMissing)
{
    namespace fs = std::filesystem;
    MasterKey key;
    std::error_code ec;
    const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
    bool credentialAbsent = false;
    if (credentials && *credentials && !where.credential.empty()) {
        const fs::path path = fs::path(credentials) / where.credential;
        credentialAbsent = isAbsentMarker(path);
        if (!credentialAbsent && fs::exists(path, ec)) {
            auto bytes = readSecretFile(path.string(), kMasterKeySize);
            if (!bytes)
                return bytes.status();
            key.bytes = std::move(*bytes);
            key.source = path.string();
            return key;
        }
    }
    const std::string& file = where.file;
    if (!file.empty() && fs::exists(file, ec)) {
        auto bytes = readSecretFile(file, kMasterKeySize);
        if (!bytes)
            return bytes.status();
        key.bytes = std::move(*bytes);
        key.source = file;
        return key;
    }
    if (createIfMissing && !file.empty()) {
        auto fresh = randomBytes(kMasterKeySize);
        if (!fresh)
            return fresh.status();
        fs::create_directories(fs::path(file).parent_path(), ec);
        std::string hex = toHex(fresh->view()) + "\n";
        Status s = writeNewSecretFile(file, hex);
        wipe(hex);
        if (!s)
            return s;
        key.bytes = std::move(*fresh);
        key.source = file;
        key.created = true;
        return key;
    }
    std::string path = file.empty() ? std::string("privacy.master_key_file") : file;
    if (credentialAbsent) {
        // Started by the unit, whose LoadCredential= names <config dir>/master.key.
        path = where.configFile.empty() ? std::string("the file named by LoadCredential=")
                                        : (fs::path(where.configFile).parent_path() / "master.key").string();
        return Status::permission(
            "no master key: sluiced refuses to start without one. The unit's credential '" + where.credential +
            "' is absent: create " + path + " (as root: umask 077; head -c 32 /dev/urandom > " + path +
            "), then start sluiced again. Keep a copy: without it nothing encrypted can be read again.");
    }
    return Status::permission(
        "no master key: sluiced refuses to start without one. Put 32 random bytes (or 64 hex digits) in " + path +
        " (for example: umask 077; head -c 32 /dev/urandom > " + path + "), or pass it as the systemd credential '" +
        where.credential + "' (LoadCredential=). Keep a copy: without it nothing encrypted can be read again.");
}

}  // namespace sluice::privacy
