#include "evp_siv_reference.h"

#include <algorithm>

#include <openssl/evp.h>

#include "privacy/openssl_error.h"

namespace sluice::privacy::testing {
namespace {

const unsigned char* uc(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

const std::string_view kEmptyAd[] = {std::string_view()};

}  // namespace

Result<EvpSiv> EvpSiv::create(size_t keySize)
{
    EvpSiv siv;
    auto cipher = fetchCipher(keySize == 32 ? "AES-128-SIV" : "AES-256-SIV");
    if (!cipher)
        return cipher.status();
    siv.cipher_ = std::move(cipher).value();
    auto keyed = newCipherCtx();
    if (!keyed)
        return keyed.status();
    siv.keyed_ = std::move(keyed).value();
    auto work = newCipherCtx();
    if (!work)
        return work.status();
    siv.work_ = std::move(work).value();
    return siv;
}

Status EvpSiv::setKey(std::string_view key)
{
    if (EVP_EncryptInit_ex2(keyed_.get(), cipher_.get(), uc(key), nullptr, nullptr) != 1)
        return opensslError("AES-SIV key setup");
    return Status::ok();
}

Status EvpSiv::finishEncrypt(evp_cipher_ctx_st* ctx, std::span<const std::string_view> ad, std::string_view plaintext,
                             std::string& out)
{
    int length = 0;
    // The AAD pointer must not be NULL even when the component is empty: OpenSSL's SIV treats a
    // NULL input as the final call and fails.
    static const unsigned char kNothing = 0;
    for (std::string_view component : ad) {
        const unsigned char* p = component.empty() ? &kNothing : uc(component);
        if (EVP_EncryptUpdate(ctx, nullptr, &length, p, static_cast<int>(component.size())) != 1)
            return opensslError("AES-SIV AAD");
    }
    if (plaintext.empty())
        return Status::error(StatusCode::kUnavailable,
                             "OpenSSL 3.0's AES-SIV fails EVP_EncryptFinal_ex for an empty plaintext");
    size_t at = out.size();
    out.resize(at + 16 + plaintext.size());
    auto* dst = reinterpret_cast<unsigned char*>(out.data() + at);
    if (EVP_EncryptUpdate(ctx, dst + 16, &length, uc(plaintext), static_cast<int>(plaintext.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx, dst + 16 + length, &length) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, dst) != 1) {
        out.resize(at);
        return opensslError("AES-SIV encrypt");
    }
    return Status::ok();
}

Status EvpSiv::encryptCopy(std::string_view plaintext, std::string& out)
{
    if (EVP_CIPHER_CTX_copy(work_.get(), keyed_.get()) != 1)
        return opensslError("AES-SIV context copy");
    workHasCipher_ = true;
    return finishEncrypt(work_.get(), kEmptyAd, plaintext, out);
}

Status EvpSiv::encryptRekey(std::string_view key, std::string_view plaintext, std::string& out)
{
    return encryptWithAd(key, kEmptyAd, plaintext, out);
}

Status EvpSiv::encryptWithAd(std::string_view key, std::span<const std::string_view> ad, std::string_view plaintext,
                             std::string& out)
{
    const EVP_CIPHER* cipher = workHasCipher_ ? nullptr : cipher_.get();
    if (EVP_EncryptInit_ex2(work_.get(), cipher, uc(key), nullptr, nullptr) != 1)
        return opensslError("AES-SIV key setup");
    workHasCipher_ = true;
    return finishEncrypt(work_.get(), ad, plaintext, out);
}

Status EvpSiv::decrypt(std::string_view key, std::string_view in, std::string& plaintext)
{
    plaintext.clear();
    if (in.size() < 16)
        return Status::corruption("too short");
    if (in.size() == 16)
        return Status::error(StatusCode::kUnavailable, "OpenSSL 3.0's AES-SIV cannot handle an empty plaintext");
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!ctx)
        return opensslError("allocating a cipher context");
    unsigned char tag[16];
    std::copy(in.begin(), in.begin() + 16, tag);
    plaintext.resize(in.size() - 16);
    int length = 0;
    if (EVP_DecryptInit_ex2(ctx.get(), cipher_.get(), uc(key), nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, 16, tag) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &length, tag, 0) != 1)  // the empty AD, non-NULL
        return opensslError("AES-SIV decrypt setup");
    if (EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()), &length,
                          uc(in.substr(16)), static_cast<int>(in.size() - 16)) != 1 ||
        EVP_DecryptFinal_ex(ctx.get(), tag, &length) != 1) {
        clearOpensslErrors();
        plaintext.clear();
        return Status::permission("AES-SIV authentication failed");
    }
    return Status::ok();
}

}  // namespace sluice::privacy::testing
