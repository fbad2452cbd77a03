// Randomness from OpenSSL's CSPRNG (RAND_bytes). Safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"
#include "privacy/secret.h"

namespace sluice::privacy {

// Fills `out[0..size)`; an error Status if the generator is not seeded or fails.
Status fillRandom(uint8_t* out, size_t size);

// `size` random bytes, for keys and seeds.
Result<SecretBytes> randomBytes(size_t size);

// A random RFC 4122 version 4 UUID in lowercase text, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
// with y in [89ab]. Used as key links.
Result<std::string> uuidV4();

// A random nonzero 32-bit Tink key id.
Result<uint32_t> randomKeyId();

}  // namespace sluice::privacy
