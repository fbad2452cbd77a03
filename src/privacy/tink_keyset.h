// Key export and import in the formats data owners already have tools for (spec section 5):
//   - a Tink cleartext JSON keyset holding one AesSivKey (export), and any such keyset written
//     by sluice or by Tink itself (import: several keys, fields in any order, the AesSivKey
//     `version` field present or not, every output prefix type);
//   - the CSV export "keyLink,encryptionKey,policyId,expiresAt" with the keyset JSON as
//     encryptionKey (RFC 4180 quoting, every value quoted, expiresAt in epoch milliseconds).
// Keyset text holds key material in clear: callers must not log it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "privacy/secret.h"
#include "privacy/siv.h"

namespace sluice::privacy {

inline constexpr std::string_view kAesSivTypeUrl = "type.googleapis.com/google.crypto.tink.AesSivKey";

enum class TinkKeyStatus : uint8_t { kEnabled, kDisabled, kDestroyed, kUnknown };
enum class TinkOutputPrefix : uint8_t { kTink, kLegacy, kCrunchy, kRaw };

struct TinkKeysetKey {
    uint32_t keyId = 0;
    TinkKeyStatus status = TinkKeyStatus::kUnknown;
    TinkOutputPrefix outputPrefix = TinkOutputPrefix::kTink;
    SecretBytes keyValue;  // the 64-byte AES-SIV key; empty unless the key is ENABLED
};

struct TinkKeyset {
    uint32_t primaryKeyId = 0;  // 0 when the keyset names none
    std::vector<TinkKeysetKey> keys;
};

// The serialized AesSivKey protobuf of a 64-byte key: 0x12 0x40 || key (version 0 is the
// proto3 default and is not written, as Tink does).
Result<SecretBytes> serializeAesSivKey(std::string_view key);
// Parses an AesSivKey protobuf: key_value (field 2) must be 64 bytes, version (field 1) absent
// or 0; unknown fields are skipped.
Result<SecretBytes> parseAesSivKey(std::string_view proto);

// The one-key keyset JSON exactly as spec section 5 shows it (same field order and spacing):
// {"primaryKeyId": ID, "key": [{"keyData": {"typeUrl": "...AesSivKey", "value": B64,
//  "keyMaterialType": "SYMMETRIC"}, "status": "ENABLED", "keyId": ID, "outputPrefixType": "TINK"}]}
Result<std::string> tinkKeysetJson(uint32_t keyId, std::string_view key);

// Parses a cleartext JSON keyset. Input over 1 MiB, nested deeper than 16 or with more than
// 4096 keys is refused. Non-enabled keys are kept (with their id and status) but not their key
// material; an enabled key of another type than AesSivKey is an error.
Result<TinkKeyset> parseTinkKeyset(std::string_view json);

// Tink's decryption rule: try the enabled keys whose output prefix (0x01 TINK, 0x00 LEGACY or
// CRUNCHY, plus key id) starts the ciphertext, then the enabled RAW keys on the whole input.
// kNotFound when no key could apply; kPermission when candidates exist but none authenticates.
Result<std::string> tinkKeysetDecrypt(const TinkKeyset& keyset, std::string_view ciphertext, SivCipher& cipher);

// ---- CSV export ----

inline constexpr std::string_view kKeyExportCsvHeader = "keyLink,encryptionKey,policyId,expiresAt";

struct KeyExportRow {
    std::string keyLink;
    std::string encryptionKey;  // keyset JSON
    std::string policyId;
    int64_t expiresAtMs = 0;
};

// Appends the header line (unquoted names, as the format shows it) and "\n".
void appendKeyExportCsvHeader(std::string& out);
// Appends one row: every value in double quotes with inner quotes doubled, then "\n".
void appendKeyExportCsvRow(std::string& out, const KeyExportRow& row);
// ---- JSON-lines export (`sluicectl keys export --format tink`, a job's keys.tink output) ----

// Appends one line: {"keyLink": L, "contract": C, "createdAt": MS, "expiresAt": MS, "keyset": K}
// with `keysetJson` (tinkKeysetJson) as K, then "\n".
void appendKeyExportJsonLine(std::string& out, std::string_view keyLink, std::string_view contract, int64_t createdAtMs,
                             int64_t expiresAtMs, std::string_view keysetJson);

// Parses a whole export (RFC 4180: quoted or bare fields, "" inside quotes, CRLF or LF, an
// optional UTF-8 BOM). The header must name the four columns in order. Errors give the record
// number, never field contents.
Result<std::vector<KeyExportRow>> parseKeyExportCsv(std::string_view text);

}  // namespace sluice::privacy
