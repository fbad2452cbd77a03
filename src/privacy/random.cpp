#include "privacy/random.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <mutex>

#include <pthread.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "privacy/openssl_error.h"

namespace sluice::privacy {
namespace {

std::atomic<uint64_t> forkCount{0};

// Registers the fork counter once; later calls only read it.
uint64_t forkEpoch()
{
    static std::once_flag registered;
    std::call_once(registered, [] { pthread_atfork(nullptr, nullptr, [] { forkCount.fetch_add(1); }); });
    return forkCount.load(std::memory_order_relaxed);
}

std::string uuidText(uint8_t* b)
{
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

uint32_t keyIdOf(const uint8_t* b) { return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]; }

}  // namespace

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
    return uuidText(b);
}

Result<uint32_t> randomKeyId()
{
    for (;;) {
        uint8_t b[4];
        SLUICE_RETURN_IF_ERROR(fillRandom(b, sizeof b));
        if (uint32_t id = keyIdOf(b); id != 0)
            return id;
    }
}

RandomPool::RandomPool(size_t blockSize)
    : block_(std::max<size_t>(blockSize, 64)), next_(block_.size()), forkEpoch_(forkEpoch())
{
}

Status RandomPool::fill(uint8_t* out, size_t size)
{
    if (const uint64_t epoch = forkCount.load(std::memory_order_relaxed); epoch != forkEpoch_) {
        // A forked child: what is left was drawn by the parent, which may hand it out too.
        OPENSSL_cleanse(block_.data(), block_.size());
        next_ = block_.size();
        forkEpoch_ = epoch;
    }
    while (size > 0) {
        if (next_ == block_.size()) {
            SLUICE_RETURN_IF_ERROR(fillRandom(block_.data(), block_.size()));
            next_ = 0;
        }
        const size_t n = std::min(size, block_.size() - next_);
        std::memcpy(out, block_.data() + next_, n);
        OPENSSL_cleanse(block_.data() + next_, n);
        next_ += n;
        out += n;
        size -= n;
    }
    return Status::ok();
}

Result<SecretBytes> RandomPool::bytes(size_t size)
{
    SecretBytes out(size);
    SLUICE_RETURN_IF_ERROR(fill(out.data(), out.size()));
    return out;
}

Result<std::string> RandomPool::uuidV4()
{
    uint8_t b[16];
    SLUICE_RETURN_IF_ERROR(fill(b, sizeof b));
    return uuidText(b);
}

Result<uint32_t> RandomPool::keyId()
{
    for (;;) {
        uint8_t b[4];
        SLUICE_RETURN_IF_ERROR(fill(b, sizeof b));
        if (uint32_t id = keyIdOf(b); id != 0)
            return id;
    }
}

}  // namespace sluice::privacy
