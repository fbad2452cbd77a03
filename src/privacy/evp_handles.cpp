#include "privacy/evp_handles.h"

#include <string>

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "privacy/openssl_error.h"

namespace sluice::privacy {

void CipherFree::operator()(evp_cipher_st* p) const { EVP_CIPHER_free(p); }
void CipherCtxFree::operator()(evp_cipher_ctx_st* p) const { EVP_CIPHER_CTX_free(p); }
void MacFree::operator()(evp_mac_st* p) const { EVP_MAC_free(p); }
void MacCtxFree::operator()(evp_mac_ctx_st* p) const { EVP_MAC_CTX_free(p); }
void KdfFree::operator()(evp_kdf_st* p) const { EVP_KDF_free(p); }
void KdfCtxFree::operator()(evp_kdf_ctx_st* p) const { EVP_KDF_CTX_free(p); }

Result<CipherPtr> fetchCipher(const char* name)
{
    CipherPtr cipher(EVP_CIPHER_fetch(nullptr, name, nullptr));
    if (!cipher)
        return opensslError(std::string("fetching cipher ") + name);
    return cipher;
}

Result<CipherCtxPtr> newCipherCtx()
{
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!ctx)
        return opensslError("allocating a cipher context");
    return ctx;
}

Result<MacPtr> fetchMac(const char* name)
{
    MacPtr mac(EVP_MAC_fetch(nullptr, name, nullptr));
    if (!mac)
        return opensslError(std::string("fetching MAC ") + name);
    return mac;
}

Result<KdfPtr> fetchKdf(const char* name)
{
    KdfPtr kdf(EVP_KDF_fetch(nullptr, name, nullptr));
    if (!kdf)
        return opensslError(std::string("fetching KDF ") + name);
    return kdf;
}

}  // namespace sluice::privacy
