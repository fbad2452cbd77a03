#include "privacy/random.h"

#include <climits>

#include <openssl/rand.h>

#include "privacy/openssl_error.h"

namespace sluice::privacy {

Status fillRandom(uint8_t* out, size_t size)
{
    while (size > 0) {
        int chunk = size > INT_MAX ? INT_MAX : static_cast<int>(size);
        if (RAND_bytes(out, chunk) != 1)
            return opensslError("RAND_bytes");
        out += chunk;
        size -= static_cast<size_t>(chunk);
    }
    return Status::ok();
}

Result<SecretBytes> randomBytes(size_t size)
{
    SecretBytes bytes(size);
    SLUICE_RETURN_IF_ERROR(fillRandom(bytes.data(), bytes.size()));
    return bytes;
}

Result<std::string> uuidV4()
{
    uint8_t b[16];
    SLUICE_RETURN_IF_ERROR(fillRandom(b, sizeof b));
    b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // variant 10xx (RFC 4122)
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out += '-';
        out += kDigits[b[i] >> 4];
        out += kDigits[b[i] & 15];
    }
    return out;
}

Result<uint32_t> randomKeyId()
{
    for (;;) {
        uint8_t b[4];
        SLUICE_RETURN_IF_ERROR(fillRandom(b, sizeof b));
        uint32_t id = uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
        if (id != 0)
            return id;
    }
}

}  // namespace sluice::privacy
