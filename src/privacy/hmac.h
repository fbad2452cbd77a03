// HMAC-SHA256 keyed once and used for many values: masking (hmac-sha256), lookup hashes of
// key-field values, dead-letter and sketch hashing.
//
// Each value costs one re-initialisation of a keyed EVP_MAC context with a NULL key, which
// restores the precomputed inner/outer hash states; duplicating a keyed context per value
// measured slower (docs/privacy-formats.md). The object owns that context: it is NOT
// thread-safe; give each worker thread its own, made by clone().
#pragma once

#include <string>
#include <string_view>

#include "core/commit.h"
#include "core/status.h"
#include "privacy/evp_handles.h"

namespace sluice::privacy {

class HmacSha256 {
public:
    // Keys a context with `key` (any length; HMAC hashes keys over 64 bytes). The caller keeps
    // and wipes its own copy of the key.
    static Result<HmacSha256> create(std::string_view key);
    // An independent keyed instance for another thread.
    Result<HmacSha256> clone() const;

    Status mac(std::string_view data, Digest& out);
    Result<Digest> mac(std::string_view data);
    // Appends the 64-character lowercase hex of the MAC.
    Status appendHex(std::string_view data, std::string& out);

private:
    HmacSha256(MacPtr mac, MacCtxPtr ctx) : mac_(std::move(mac)), ctx_(std::move(ctx)) {}

    MacPtr mac_;
    MacCtxPtr ctx_;
};

}  // namespace sluice::privacy
