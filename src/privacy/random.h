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

// Random bytes drawn from RAND_bytes a block at a time and handed out a few at a time, for a
// thread that makes many keys: RAND_bytes costs about a microsecond per call however few bytes
// it gives (a getpid() system call for its fork check, a lock, a reseed check), and a new key
// took four calls. The block is SecretBytes: each handed-out byte is wiped from it at once, the
// rest when the pool is dropped. After a fork the child discards what the parent drew (a
// pthread_atfork counter), so two processes never hand out the same bytes. One thread.
class RandomPool {
public:
    explicit RandomPool(size_t blockSize = 4096);

    Status fill(uint8_t* out, size_t size);
    Result<SecretBytes> bytes(size_t size);
    Result<std::string> uuidV4();
    Result<uint32_t> keyId();

private:
    SecretBytes block_;
    size_t next_;          // block_[next_..) not handed out yet
    uint64_t forkEpoch_;
};

}  // namespace sluice::privacy
