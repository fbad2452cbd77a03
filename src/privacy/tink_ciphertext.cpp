#include "privacy/tink_ciphertext.h"

#include <array>

#include "core/encoding.h"

namespace sluice::privacy {
namespace {

constexpr size_t kStackRaw = 1024;

}  // namespace

void writeTinkPrefix(uint32_t keyId, uint8_t* out)
{
    out[0] = kTinkStartByte;
    out[1] = static_cast<uint8_t>(keyId >> 24);
    out[2] = static_cast<uint8_t>(keyId >> 16);
    out[3] = static_cast<uint8_t>(keyId >> 8);
    out[4] = static_cast<uint8_t>(keyId);
}

Status tinkEncrypt(SivCipher& cipher, uint32_t keyId, std::string_view plaintext, std::string& out)
{
    size_t at = out.size();
    out.resize(at + tinkCiphertextSize(plaintext.size()));
    auto* dst = reinterpret_cast<uint8_t*>(out.data() + at);
    writeTinkPrefix(keyId, dst);
    Status st = cipher.encrypt(plaintext, dst + kTinkPrefixSize);
    if (!st.isOk())
        out.resize(at);
    return st;
}

size_t tinkBase64Size(size_t plaintextSize) { return base64Length(tinkCiphertextSize(plaintextSize)); }

Status writeTinkBase64(SivCipher& cipher, uint32_t keyId, std::string_view plaintext, char* out)
{
    size_t rawSize = tinkCiphertextSize(plaintext.size());
    if (rawSize <= kStackRaw) {
        std::array<uint8_t, kStackRaw> raw;
        writeTinkPrefix(keyId, raw.data());
        SLUICE_RETURN_IF_ERROR(cipher.encrypt(plaintext, raw.data() + kTinkPrefixSize));
        encodeBase64(out, {reinterpret_cast<const char*>(raw.data()), rawSize});
        return Status::ok();
    }
    std::string raw;
    SLUICE_RETURN_IF_ERROR(tinkEncrypt(cipher, keyId, plaintext, raw));
    encodeBase64(out, raw);
    return Status::ok();
}

Status appendTinkBase64(SivCipher& cipher, uint32_t keyId, std::string_view plaintext, std::string& out)
{
    const size_t at = out.size();
    out.resize(at + tinkBase64Size(plaintext.size()));
    Status st = writeTinkBase64(cipher, keyId, plaintext, out.data() + at);
    if (!st.isOk())
        out.resize(at);
    return st;
}

Result<TinkPrefix> parseTinkPrefix(std::string_view raw)
{
    if (raw.size() < kTinkPrefixSize + kSivSize)
        return Status::corruption("Tink ciphertext shorter than its 5-byte prefix and 16-byte SIV");
    auto* b = reinterpret_cast<const uint8_t*>(raw.data());
    if (b[0] != kTinkStartByte && b[0] != kLegacyStartByte)
        return Status::corruption("Tink ciphertext does not start with 0x01 or 0x00");
    TinkPrefix prefix;
    prefix.startByte = b[0];
    prefix.keyId = uint32_t(b[1]) << 24 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 8 | b[4];
    prefix.sivAndCiphertext = raw.substr(kTinkPrefixSize);
    return prefix;
}

Result<std::string> tinkDecrypt(SivCipher& cipher, uint32_t keyId, std::string_view raw)
{
    auto prefix = parseTinkPrefix(raw);
    if (!prefix)
        return prefix.status();
    if (prefix->startByte != kTinkStartByte)
        return Status::corruption("ciphertext has a LEGACY/CRUNCHY prefix, expected TINK (0x01)");
    if (prefix->keyId != keyId)
        return Status::notFound("ciphertext is for Tink key id " + std::to_string(prefix->keyId) +
                                ", not " + std::to_string(keyId));
    return cipher.decrypt(prefix->sivAndCiphertext);
}

Result<std::string> tinkDecryptBase64(SivCipher& cipher, uint32_t keyId, std::string_view text)
{
    auto raw = fromBase64(text);
    if (!raw)
        return Status::corruption("ciphertext is not standard Base64 with padding");
    return tinkDecrypt(cipher, keyId, *raw);
}

}  // namespace sluice::privacy
