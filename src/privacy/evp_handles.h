// Move-only owners for OpenSSL handles. Each `*_free` call lives in a deleter here and nowhere
// else. Callers take ownership right after the create/fetch call, before checking the result.
//
// Only OpenSSL's struct tags are named, so this header (and the public headers that hold these
// owners as members) can be included outside privacy/ without pulling in <openssl/*>.
#pragma once

#include <memory>

#include "core/status.h"

struct evp_cipher_st;
struct evp_cipher_ctx_st;
struct evp_mac_st;
struct evp_mac_ctx_st;
struct evp_kdf_st;
struct evp_kdf_ctx_st;

namespace sluice::privacy {

struct CipherFree { void operator()(evp_cipher_st* p) const; };
struct CipherCtxFree { void operator()(evp_cipher_ctx_st* p) const; };
struct MacFree { void operator()(evp_mac_st* p) const; };
struct MacCtxFree { void operator()(evp_mac_ctx_st* p) const; };
struct KdfFree { void operator()(evp_kdf_st* p) const; };
struct KdfCtxFree { void operator()(evp_kdf_ctx_st* p) const; };

using CipherPtr = std::unique_ptr<evp_cipher_st, CipherFree>;
using CipherCtxPtr = std::unique_ptr<evp_cipher_ctx_st, CipherCtxFree>;
using MacPtr = std::unique_ptr<evp_mac_st, MacFree>;
using MacCtxPtr = std::unique_ptr<evp_mac_ctx_st, MacCtxFree>;
using KdfPtr = std::unique_ptr<evp_kdf_st, KdfFree>;
using KdfCtxPtr = std::unique_ptr<evp_kdf_ctx_st, KdfCtxFree>;

// Fetch from the default library context; errors carry the algorithm name.
Result<CipherPtr> fetchCipher(const char* name);
Result<CipherCtxPtr> newCipherCtx();
Result<MacPtr> fetchMac(const char* name);
Result<KdfPtr> fetchKdf(const char* name);

}  // namespace sluice::privacy
