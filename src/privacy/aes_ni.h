// AES-256 encryption with the x86-64 AES-NI instructions, for the per-value paths of AES-SIV
// (the CBC-MAC under CMAC, and the CTR keystream). Every value of a batch job and of the daemon
// has its own key, so each value re-keys: through OpenSSL's EVP that is two EVP_EncryptInit_ex2
// calls (parameter lookups, key-length and IV queries, padding) costing more than the blocks
// encrypted; here it is the key expansion alone (14 AESKEYGENASSIST rounds). Encryption only:
// SIV never decrypts a block. Used when the CPU has AES-NI (available()); CbcMac and SivCipher
// fall back to OpenSSL otherwise, and for AES-128 keys.
//
// The round keys are key material: their owner wipes them (OPENSSL_cleanse).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace sluice::privacy::aesni {

struct RoundKeys256 {
    alignas(16) std::array<uint8_t, 15 * 16> bytes{};
};

// Whether this CPU has the AES-NI instructions (checked once); always false when the build is not
// for x86-64 (then the other functions must not be called).
bool available();

// The 15 round keys of a 32-byte AES-256 key (FIPS-197 key expansion).
void expandKey256(const uint8_t* key, RoundKeys256& out);

// CBC-MAC from a zero IV over `blocks` whole 16-byte blocks of `data`: the last block of the
// CBC encryption is written to `mac`. `data` is not changed.
void cbcMac256(const RoundKeys256& keys, const uint8_t* data, size_t blocks, uint8_t* mac);

// Encrypts `blocks` 16-byte blocks in place, each on its own (ECB: CTR's counter blocks).
void encryptBlocks256(const RoundKeys256& keys, uint8_t* data, size_t blocks);

}  // namespace sluice::privacy::aesni
