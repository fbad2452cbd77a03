// AES-SIV (RFC 5297) as Google Tink's Deterministic AEAD uses it: a 64-byte key (AES-256-SIV:
// the first 32 bytes key S2V/CMAC, the last 32 bytes key CTR) and exactly ONE associated-data
// component, the empty string. 32-byte keys (AES-128-SIV) are accepted so that RFC 5297's own
// vectors can test the construction, and a general entry point takes any list of AD components.
//
// The construction is ours on top of two keyed OpenSSL contexts, AES-CBC (for CMAC) and AES-ECB
// (for CTR keystream), that are only ever fed blocks: no per-value EVP (re)initialisation, and a
// key switch is two AES key schedules. With AES-256 keys on a CPU with AES-NI both run on the
// instructions directly (aes_ni.h), and a key switch is two key expansions, no EVP call. OpenSSL's own "AES-256-SIV" EVP cipher needs a context
// copy or a full re-key per value, re-derives the per-key S2V values each time, and cannot
// encrypt an empty plaintext in OpenSSL 3.0. docs/privacy-formats.md has the measurements.
//
// Threads: a SivKey is an immutable value and may be shared read-only; a SivCipher owns EVP
// contexts and belongs to one thread (one per worker).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "privacy/aes_cmac.h"
#include "privacy/evp_handles.h"

namespace sluice::privacy {

inline constexpr size_t kSivSize = 16;
inline constexpr size_t kSivKeySize = 64;  // AES-256-SIV, what Tink and sluice use

// Key bytes plus the per-key values S2V needs when the AD is one empty string, so that
// switching to a cached key costs two AES key schedules and nothing else. Wiped on destruction.
// Made by SivCipher::makeKey; move-only.
class SivKey {
public:
    SivKey() = default;
    SivKey(const SivKey&) = delete;
    SivKey& operator=(const SivKey&) = delete;
    SivKey(SivKey&& other) noexcept;
    SivKey& operator=(SivKey&& other) noexcept;
    ~SivKey();

    // 0 for an empty (moved-from or default) key, else 32 or 64.
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

private:
    friend class SivCipher;
    void wipe();

    // Only the key bytes: setKey derives the CMAC subkeys and the S2V state again (three AES
    // blocks, next to the two key schedules it expands anyway), so that a key held in memory
    // costs 80 bytes, not 128 (a million keys in KeyCache's pool).
    uint64_t serial_ = 0;           // unique per makeKey call; lets setKey skip re-keying
    std::array<uint8_t, 64> key_{};
    uint8_t size_ = 0;
};

class SivCipher {
public:
    // Fetches AES-{128,256}-CBC and AES-{128,256}-ECB once and allocates the two contexts.
    static Result<SivCipher> create();
    SivCipher(SivCipher&&) noexcept = default;
    SivCipher& operator=(SivCipher&&) noexcept = default;
    ~SivCipher();

    // Builds a key from 32 or 64 bytes and leaves this cipher keyed with it.
    Result<SivKey> makeKey(std::string_view keyBytes);
    // Makes `key` current. Costs nothing when it already is; otherwise re-keys the existing
    // contexts (no allocation). `key` need not outlive this call.
    Status setKey(const SivKey& key);

    // Tink Deterministic AEAD encryption (AD = one empty string) under the current key.
    // Writes SIV || ciphertext, kSivSize + plaintext.size() bytes, to `out`, which must not
    // overlap `plaintext`.
    Status encrypt(std::string_view plaintext, uint8_t* out);
    // Appends SIV || ciphertext to `out`; `plaintext` must not point into `out`.
    Status encrypt(std::string_view plaintext, std::string& out);

    // Replaces `plaintext` with the decryption of SIV || ciphertext. A wrong key or an altered
    // input gives a kPermission error and leaves `plaintext` empty (never unauthenticated bytes);
    // input shorter than the SIV gives kCorruption.
    Status decrypt(std::string_view sivAndCiphertext, std::string& plaintext);
    Result<std::string> decrypt(std::string_view sivAndCiphertext);

    // RFC 5297 with an explicit list of AD components (at most 126), for vectors and tools.
    Status encryptWithAd(std::span<const std::string_view> ad, std::string_view plaintext, std::string& out);
    Status decryptWithAd(std::span<const std::string_view> ad, std::string_view sivAndCiphertext,
                         std::string& plaintext);

private:
    explicit SivCipher(CbcMac cbcMac) : cbcMac_(std::move(cbcMac)) {}

    struct Current {
        uint64_t serial = 0;
        size_t size = 0;
        Block k1{};
        Block k2{};
        Block d{};
        Block fullMask{};   // d ^ k1: last block of a plaintext that is a whole number of blocks
        Block shortMask{};  // dbl(d) ^ k1: the single block of a plaintext shorter than 16 bytes
    };

    Status keyContexts(const uint8_t* key, size_t size);
    // After keyContexts(key): derives the key's CMAC subkeys and S2V state into current_.
    Status loadCurrent(const SivKey& key);
    Status s2vFast(std::string_view plaintext, uint8_t* work, Block& v);
    Status s2vGeneral(std::span<const std::string_view> ad, std::string_view plaintext, Block& v);
    Status ctr(const uint8_t* siv, const uint8_t* in, size_t size, uint8_t* out);
    Status checkKeyed() const;
    void forgetKey();
    Status finishDecrypt(Status st, const Block& v, const uint8_t* siv, std::string& plaintext);

    CbcMac cbcMac_;
    CipherPtr ecb128_;
    CipherPtr ecb256_;
    CipherCtxPtr ecbCtx_;  // keyed with the CTR key; encrypts counter blocks
    size_t ecbKeySize_ = 0;
    // AES-256 CTR keys with AES-NI (aes_ni.h): the counter blocks are encrypted with these
    // round keys instead of ecbCtx_, which then keeps whatever key it had.
    bool ctrNi_ = false;
    aesni::RoundKeys256 ctrKeys_;
    Current current_;
    std::vector<uint8_t> scratch_;  // decrypt and the general path; holds plaintext, not keys
};

}  // namespace sluice::privacy
