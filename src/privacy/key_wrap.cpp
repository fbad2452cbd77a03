#include "privacy/key_wrap.h"

#include <climits>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "core/encoding.h"
#include "privacy/openssl_error.h"
#include "privacy/random.h"

namespace sluice::privacy {
namespace {

constexpr std::string_view kCheckPrefix = "sluice-mkcheck-v1:";
constexpr std::string_view kCheckPlaintext = "sluice master key check";
constexpr std::string_view kCheckAd = "sluice master key check v1";
constexpr size_t kMaxWrapInput = 1 << 20;

const unsigned char* ucharsOf(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

Result<KeyWrapper> KeyWrapper::create(SecretBytes masterKey)
{
    if (masterKey.size() != kMasterKeySize)
        return Status::invalid("master key must be 32 bytes, got " + std::to_string(masterKey.size()));
    auto gcm = fetchCipher("AES-256-GCM");
    if (!gcm)
        return gcm.status();
    auto hkdf = fetchKdf("HKDF");
    if (!hkdf)
        return hkdf.status();
    return KeyWrapper(std::move(masterKey), std::move(gcm).value(), std::move(hkdf).value());
}

namespace {

// AES-256-GCM of `keyBytes` into `out` (nonce already in its first kWrapNonceSize bytes) with
// `ctx`; `gcm` and `masterKey` null when `ctx` is keyed already.
Status gcmSeal(evp_cipher_ctx_st* ctx, const evp_cipher_st* gcm, const uint8_t* masterKey, std::string_view keyBytes,
            std::string_view associatedData, std::string& out)
{
    auto* nonce = reinterpret_cast<unsigned char*>(out.data());
    unsigned char* body = nonce + kWrapNonceSize;
    int length = 0;
    if (EVP_EncryptInit_ex2(ctx, gcm, masterKey, nonce, nullptr) != 1 ||
        EVP_EncryptUpdate(ctx, nullptr, &length, ucharsOf(associatedData), static_cast<int>(associatedData.size())) !=
            1 ||
        EVP_EncryptUpdate(ctx, body, &length, ucharsOf(keyBytes), static_cast<int>(keyBytes.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx, body + length, &length) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kWrapTagSize), body + keyBytes.size()) != 1)
        return opensslError("wrapping a key with AES-256-GCM");
    return Status::ok();
}

// The inverse of gcmSeal(); kPermission when the tag does not verify.
Result<SecretBytes> gcmOpen(evp_cipher_ctx_st* ctx, const evp_cipher_st* gcm, const uint8_t* masterKey,
                         std::string_view wrapped, std::string_view associatedData)
{
    if (wrapped.size() < kWrapNonceSize + kWrapTagSize)
        return Status::corruption("wrapped key is " + std::to_string(wrapped.size()) +
                                  " bytes, shorter than nonce and tag");
    if (wrapped.size() > kMaxWrapInput || associatedData.size() > kMaxWrapInput)
        return Status::invalid("wrapped key or associated data too large");
    const unsigned char* nonce = ucharsOf(wrapped);
    const unsigned char* body = nonce + kWrapNonceSize;
    size_t bodySize = wrapped.size() - kWrapNonceSize - kWrapTagSize;
    unsigned char tag[kWrapTagSize];
    std::memcpy(tag, body + bodySize, kWrapTagSize);  // the ctrl takes a non-const pointer

    SecretBytes key(bodySize);
    int length = 0;
    if (EVP_DecryptInit_ex2(ctx, gcm, masterKey, nonce, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kWrapTagSize), tag) != 1 ||
        EVP_DecryptUpdate(ctx, nullptr, &length, ucharsOf(associatedData), static_cast<int>(associatedData.size())) !=
            1 ||
        EVP_DecryptUpdate(ctx, key.data(), &length, body, static_cast<int>(bodySize)) != 1)
        return opensslError("unwrapping a key with AES-256-GCM");
    if (EVP_DecryptFinal_ex(ctx, key.data() + length, &length) != 1) {
        clearOpensslErrors();
        return Status::permission("cannot unwrap key: wrong master key, wrong key link, or altered bytes");
    }
    return key;
}

}  // namespace

Result<std::string> KeyWrapper::wrap(std::string_view keyBytes, std::string_view associatedData) const
{
    if (keyBytes.size() > kMaxWrapInput || associatedData.size() > kMaxWrapInput)
        return Status::invalid("key or associated data too large to wrap");
    std::string out(kWrapNonceSize + keyBytes.size() + kWrapTagSize, '\0');
    SLUICE_RETURN_IF_ERROR(fillRandom(reinterpret_cast<uint8_t*>(out.data()), kWrapNonceSize));
    auto ctx = newCipherCtx();
    if (!ctx)
        return ctx.status();
    SLUICE_RETURN_IF_ERROR(gcmSeal(ctx->get(), gcm_.get(), masterKey_.data(), keyBytes, associatedData, out));
    return out;
}

Result<SecretBytes> KeyWrapper::unwrap(std::string_view wrapped, std::string_view associatedData) const
{
    auto ctx = newCipherCtx();
    if (!ctx)
        return ctx.status();
    return gcmOpen(ctx->get(), gcm_.get(), masterKey_.data(), wrapped, associatedData);
}

Result<KeySealer> KeyWrapper::sealer() const
{
    auto encrypt = newCipherCtx();
    if (!encrypt)
        return encrypt.status();
    auto decrypt = newCipherCtx();
    if (!decrypt)
        return decrypt.status();
    if (EVP_EncryptInit_ex2(encrypt->get(), gcm_.get(), masterKey_.data(), nullptr, nullptr) != 1 ||
        EVP_DecryptInit_ex2(decrypt->get(), gcm_.get(), masterKey_.data(), nullptr, nullptr) != 1)
        return opensslError("keying AES-256-GCM with the master key");
    return KeySealer(std::move(*encrypt), std::move(*decrypt));
}

Result<std::string> KeySealer::wrap(std::string_view keyBytes, std::string_view associatedData, RandomPool& random)
{
    if (keyBytes.size() > kMaxWrapInput || associatedData.size() > kMaxWrapInput)
        return Status::invalid("key or associated data too large to wrap");
    std::string out(kWrapNonceSize + keyBytes.size() + kWrapTagSize, '\0');
    SLUICE_RETURN_IF_ERROR(random.fill(reinterpret_cast<uint8_t*>(out.data()), kWrapNonceSize));
    SLUICE_RETURN_IF_ERROR(gcmSeal(encrypt_.get(), nullptr, nullptr, keyBytes, associatedData, out));
    return out;
}

Result<SecretBytes> KeySealer::unwrap(std::string_view wrapped, std::string_view associatedData)
{
    return gcmOpen(decrypt_.get(), nullptr, nullptr, wrapped, associatedData);
}

Result<std::string> KeyWrapper::makeCheck() const
{
    auto wrapped = wrap(kCheckPlaintext, kCheckAd);
    if (!wrapped)
        return wrapped.status();
    std::string out(kCheckPrefix);
    appendBase64(out, *wrapped);
    return out;
}

Status KeyWrapper::verifyCheck(std::string_view check) const
{
    if (check.substr(0, kCheckPrefix.size()) != kCheckPrefix)
        return Status::corruption("master key check value is malformed (unknown format)");
    auto wrapped = fromBase64(check.substr(kCheckPrefix.size()));
    if (!wrapped || wrapped->size() != kWrapNonceSize + kCheckPlaintext.size() + kWrapTagSize)
        return Status::corruption("master key check value is malformed");
    auto plain = unwrap(*wrapped, kCheckAd);
    if (!plain) {
        if (plain.status().code() == StatusCode::kPermission)
            return Status::permission("the master key does not match this database");
        return plain.status();
    }
    if (plain->view() != kCheckPlaintext)
        return Status::corruption("master key check value is malformed (unexpected content)");
    return Status::ok();
}

Result<SecretBytes> KeyWrapper::deriveKey(std::string_view label, size_t size) const
{
    if (label.empty())
        return Status::invalid("HKDF label must not be empty");
    if (size == 0 || size > 255 * 32)
        return Status::invalid("HKDF-SHA256 output must be 1 to 8160 bytes");
    KdfCtxPtr ctx(EVP_KDF_CTX_new(hkdf_.get()));
    if (!ctx)
        return opensslError("allocating an HKDF context");
    char digest[] = "SHA256";
    // OSSL_PARAM takes non-const pointers; OpenSSL only reads these buffers.
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(masterKey_.data()),
                                          masterKey_.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(label.data()), label.size()),
        OSSL_PARAM_construct_end(),
    };
    SecretBytes out(size);
    if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1)
        return opensslError("HKDF-SHA256");
    return out;
}

Status verifyMasterKey(const KeyWrapper& wrapper, const std::optional<std::string>& stored, bool databaseHoldsKeys)
{
    if (stored)
        return wrapper.verifyCheck(*stored);
    if (databaseHoldsKeys)
        return Status::corruption("the database holds keys but no master-key check value; refusing to guess");
    return Status::ok();
}

}  // namespace sluice::privacy
