// OpenSSL's own AES-SIV ("AES-256-SIV" / "AES-128-SIV" through EVP), used only by the tests (as
// an independent cross-check of SivCipher) and by the benchmark (as the baseline it replaced).
// Tink's single empty associated-data component is passed as an explicit zero-length AAD update
// before the plaintext; without it OpenSSL computes S2V over the plaintext alone.
// OpenSSL 3.0 cannot encrypt or decrypt an EMPTY plaintext with AES-SIV (EVP_EncryptFinal_ex
// fails because the provider skips zero-length updates and never computes the SIV); those calls
// return kUnavailable here. SivCipher has no such gap (Wycheproof tcId 296 covers it).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "privacy/evp_handles.h"

namespace sluice::privacy::testing {

class EvpSiv {
public:
    // keySize 64 (AES-256-SIV) or 32 (AES-128-SIV).
    static Result<EvpSiv> create(size_t keySize = 64);

    // Keys the template context.
    Status setKey(std::string_view key);
    // Encrypts by copying the keyed template into the work context (EVP_CIPHER_CTX_copy).
    // Appends SIV || ciphertext.
    Status encryptCopy(std::string_view plaintext, std::string& out);
    // Encrypts by keying the work context again (EVP_EncryptInit_ex2 with a NULL cipher).
    Status encryptRekey(std::string_view key, std::string_view plaintext, std::string& out);
    // General AD list; an empty list means no AAD update at all.
    Status encryptWithAd(std::string_view key, std::span<const std::string_view> ad, std::string_view plaintext,
                         std::string& out);
    // Decrypts SIV || ciphertext with AD = one empty string; kPermission on a bad tag.
    Status decrypt(std::string_view key, std::string_view sivAndCiphertext, std::string& plaintext);

private:
    EvpSiv() = default;
    Status finishEncrypt(evp_cipher_ctx_st* ctx, std::span<const std::string_view> ad, std::string_view plaintext,
                         std::string& out);

    CipherPtr cipher_;
    CipherCtxPtr keyed_;
    CipherCtxPtr work_;
    bool workHasCipher_ = false;
};

}  // namespace sluice::privacy::testing
