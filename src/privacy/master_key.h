// Where the master key comes from: the systemd credential ($CREDENTIALS_DIRECTORY/<name>, from
// LoadCredential=) when present, else the configured file. Never argv, never the environment.
#pragma once

#include <string>

#include "core/status.h"
#include "privacy/secret.h"

namespace sluice::privacy {

// What the configuration says about the master key.
struct MasterKeyLocation {
    std::string file;        // privacy.master_key_file, absolute; "" when only the credential is used
    std::string credential;  // privacy.master_key_credential: a name under $CREDENTIALS_DIRECTORY
    std::string configFile;  // the configuration file ("" for the embedded one), for messages
};

struct MasterKey {
    SecretBytes bytes;
    std::string source;   // for messages: the path it was read from
    bool created = false; // the demo made it just now
};

// With `createIfMissing` (demo mode) a missing key file is created with 32 random bytes, mode
// 0600. Otherwise a missing key is an error that says how to provide one.
Result<MasterKey> loadMasterKey(const MasterKeyLocation& where, bool createIfMissing);

}  // namespace sluice::privacy
