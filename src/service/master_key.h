// Where the master key comes from: the systemd credential ($CREDENTIALS_DIRECTORY/<name>, from
// LoadCredential=) when present, else the configured file. Never argv, never the environment.
#pragma once

#include <string>

#include "config/config.h"
#include "core/status.h"
#include "privacy/secret.h"

namespace sluice::service {

struct MasterKey {
    privacy::SecretBytes bytes;
    std::string source;   // for messages: the path it was read from
    bool created = false; // the demo made it just now
};

// With `createIfMissing` (demo mode) a missing key file is created with 32 random bytes, mode
// 0600. Otherwise a missing key is an error that says how to provide one.
Result<MasterKey> loadMasterKey(const config::Config& config, bool createIfMissing);

}  // namespace sluice::service
