// AES-CMAC (RFC 4493) built on OpenSSL's AES-CBC: CMAC is a zero-IV CBC-MAC whose last block
// is first xor'ed with a subkey, so one EVP_EncryptUpdate over the prepared message gives the
// tag. AES-256 keys use the AES-NI instructions instead when the CPU has them (aes_ni.h): a
// re-key per value then costs a key expansion, not an EVP re-initialisation. The SIV code uses the lower layer (CbcMac) directly with subkeys it has precomputed.
//
// Per-thread objects: they own EVP contexts and are not thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "privacy/aes_ni.h"
#include "privacy/evp_handles.h"

namespace sluice::privacy {

using Block = std::array<uint8_t, 16>;

// Doubling in GF(2^128) as RFC 4493 and RFC 5297 define it ("dbl").
Block dbl(const Block& in);

// dst ^= src over `size` bytes, eight at a time (inline: every caller xors a 16-byte block on
// the per-value path of AES-SIV, where a byte loop behind a call was about 3% of a job's CPU).
inline void xorBytes(uint8_t* dst, const uint8_t* src, size_t size)
{
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t a;
        uint64_t b;
        std::memcpy(&a, dst + i, 8);
        std::memcpy(&b, src + i, 8);
        a ^= b;
        std::memcpy(dst + i, &a, 8);
    }
    for (; i < size; ++i)
        dst[i] ^= src[i];
}

// Zero-IV CBC-MAC over whole AES blocks; the last ciphertext block is the MAC.
class CbcMac {
public:
    // Fetches AES-128-CBC and AES-256-CBC once.
    static Result<CbcMac> create();
    CbcMac(CbcMac&&) noexcept = default;
    CbcMac& operator=(CbcMac&&) noexcept = default;
    ~CbcMac();

    // `size` is 16 (AES-128) or 32 (AES-256). Re-keys the existing context (no reallocation
    // unless the key size changes).
    Status setKey(const uint8_t* key, size_t size);
    size_t keySize() const { return keySize_; }

    // `data` holds `size` bytes, a nonzero multiple of 16, already padded and masked by the
    // caller; it may be overwritten with the CBC output. Writes the last output block to `mac`.
    Status macInPlace(uint8_t* data, size_t size, Block& mac);
    // Encrypts each of `blocks` 16-byte blocks of `data` on its own, in place: a one-block
    // CBC-MAC of each, computed side by side (AES-NI) rather than one after the other.
    Status encryptEach(uint8_t* data, size_t blocks);

private:
    CbcMac() = default;

    CipherPtr cbc128_;
    CipherPtr cbc256_;
    CipherCtxPtr ctx_;
    size_t keySize_ = 0;     // of the current key; 0: none
    size_t evpKeySize_ = 0;  // the EVP context's cipher (AES-128 or AES-256), 0: none
    bool ni_ = false;        // the current key is niKeys_ (AES-NI), not the EVP context's
    aesni::RoundKeys256 niKeys_;
    Block chain_{};  // the context's current CBC state (last output block); zero after keying
};

// CMAC with the subkeys (K1, K2 of RFC 4493) supplied by the caller; `scratch` is reused
// across calls to avoid allocations.
Status cmacWithSubkeys(CbcMac& cbc, const Block& k1, const Block& k2, std::string_view data,
                       std::vector<uint8_t>& scratch, Block& out);

// AES-CMAC with a 16- or 32-byte key.
class AesCmac {
public:
    static Result<AesCmac> create();
    AesCmac(AesCmac&&) noexcept = default;
    AesCmac& operator=(AesCmac&&) noexcept = default;
    ~AesCmac();

    // Keys the context and derives the subkeys (one AES block).
    Status setKey(std::string_view key);
    Result<Block> mac(std::string_view data);

    const Block& subkey1() const { return k1_; }
    const Block& subkey2() const { return k2_; }

private:
    explicit AesCmac(CbcMac cbc) : cbc_(std::move(cbc)) {}

    CbcMac cbc_;
    Block k1_{};
    Block k2_{};
    std::vector<uint8_t> scratch_;
};

}  // namespace sluice::privacy
