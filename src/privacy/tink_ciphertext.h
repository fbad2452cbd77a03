// Tink's ciphertext format for a Deterministic AEAD key, as stored by sluice:
//   raw:  0x01 || key_id (4 bytes, big-endian) || SIV (16) || ciphertext (plaintext length)
//   text: standard Base64 with padding of the raw bytes (the database's column value)
// Tink also writes 0x00 || key_id for LEGACY and CRUNCHY keys and no prefix for RAW keys; the
// parser reports which it saw (tink_keyset.h picks keys by it).
//
// Functions taking a SivCipher use its current key and share its threading rule (per thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "privacy/siv.h"

namespace sluice::privacy {

inline constexpr uint8_t kTinkStartByte = 0x01;    // outputPrefixType TINK
inline constexpr uint8_t kLegacyStartByte = 0x00;  // LEGACY and CRUNCHY
inline constexpr size_t kTinkPrefixSize = 5;

constexpr size_t tinkCiphertextSize(size_t plaintextSize) { return kTinkPrefixSize + kSivSize + plaintextSize; }

// Writes the 5-byte prefix 0x01 || keyId (big-endian).
void writeTinkPrefix(uint32_t keyId, uint8_t* out);

// Appends the raw Tink ciphertext of `plaintext` under the cipher's current key.
Status tinkEncrypt(SivCipher& cipher, uint32_t keyId, std::string_view plaintext, std::string& out);

// The length of the Base64 text of the raw Tink ciphertext of `plaintextSize` bytes.
size_t tinkBase64Size(size_t plaintextSize);

// The per-value fast path: writes the Base64 text of the raw Tink ciphertext, exactly
// tinkBase64Size(plaintext.size()) characters, to `out` (an arena's bytes: no copy through a
// string). The raw bytes are built on the stack for values up to 1 KiB. On failure `out` holds
// nothing usable.
Status writeTinkBase64(SivCipher& cipher, uint32_t keyId, std::string_view plaintext, char* out);
// The same, appended to `out`.
Status appendTinkBase64(SivCipher& cipher, uint32_t keyId, std::string_view plaintext, std::string& out);

struct TinkPrefix {
    uint8_t startByte = 0;               // kTinkStartByte or kLegacyStartByte
    uint32_t keyId = 0;
    std::string_view sivAndCiphertext;  // points into the parsed input
};

// Splits a raw Tink ciphertext; kCorruption when it is too short for prefix + SIV or its first
// byte is neither 0x01 nor 0x00.
Result<TinkPrefix> parseTinkPrefix(std::string_view raw);

// Decrypts a raw TINK-prefixed ciphertext whose key id must be `keyId`, with the cipher's
// current key. A different key id is kNotFound; a bad tag is kPermission.
Result<std::string> tinkDecrypt(SivCipher& cipher, uint32_t keyId, std::string_view raw);
// Same, from the Base64 text form; text that is not strict Base64 is kCorruption.
Result<std::string> tinkDecryptBase64(SivCipher& cipher, uint32_t keyId, std::string_view text);

}  // namespace sluice::privacy
