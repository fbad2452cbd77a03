#include "privacy/murmur3.h"

#include <cstring>

#include <openssl/crypto.h>

namespace sluice::privacy {
namespace {

constexpr uint64_t kC1 = 0x87c37b91114253d5ULL;
constexpr uint64_t kC2 = 0x4cf5ad432745937fULL;

constexpr uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

constexpr uint64_t fmix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

// The algorithm reads 64-bit little-endian words; assemble them bytewise so the result does
// not depend on the host's byte order or alignment.
uint64_t loadLe64(const uint8_t* p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = v << 8 | p[i];
    return v;
}

void appendHex64(std::string& out, uint64_t v)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    char buf[16];
    int n = 0;
    do {
        buf[n++] = kDigits[v & 15];
        v >>= 4;
    } while (v != 0);
    while (n > 0)
        out += buf[--n];
}

}  // namespace

Murmur3Hash murmur3x64_128(std::string_view data, uint32_t seed)
{
    const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
    const size_t length = data.size();
    const size_t blocks = length / 16;

    uint64_t h1 = seed;
    uint64_t h2 = seed;

    for (size_t i = 0; i < blocks; ++i) {
        uint64_t k1 = loadLe64(bytes + 16 * i);
        uint64_t k2 = loadLe64(bytes + 16 * i + 8);

        k1 *= kC1;
        k1 = rotl(k1, 31);
        k1 *= kC2;
        h1 ^= k1;
        h1 = rotl(h1, 27);
        h1 += h2;
        h1 = h1 * 5 + 0x52dce729;

        k2 *= kC2;
        k2 = rotl(k2, 33);
        k2 *= kC1;
        h2 ^= k2;
        h2 = rotl(h2, 31);
        h2 += h1;
        h2 = h2 * 5 + 0x38495ab5;
    }

    // Tail: up to 15 bytes, little-endian into k1 (bytes 0..7) and k2 (bytes 8..14).
    const uint8_t* tail = bytes + 16 * blocks;
    const size_t rest = length & 15;
    uint64_t k1 = 0;
    uint64_t k2 = 0;
    for (size_t i = rest; i > 8; --i)
        k2 = k2 << 8 | tail[i - 1];
    for (size_t i = rest < 8 ? rest : 8; i > 0; --i)
        k1 = k1 << 8 | tail[i - 1];
    if (rest > 8) {
        k2 *= kC2;
        k2 = rotl(k2, 33);
        k2 *= kC1;
        h2 ^= k2;
    }
    if (rest > 0) {
        k1 *= kC1;
        k1 = rotl(k1, 31);
        k1 *= kC2;
        h1 ^= k1;
    }

    h1 ^= length;
    h2 ^= length;
    h1 += h2;
    h2 += h1;
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 += h2;
    h2 += h1;
    return {h1, h2};
}

void appendMurmur3Hex(std::string& out, std::string_view data)
{
    Murmur3Hash h = murmur3x64_128(data, 0);
    appendHex64(out, h.h1);
    appendHex64(out, h.h2);
}

std::string murmur3Mask(std::string_view seed, std::string_view value)
{
    std::string input;
    input.reserve(seed.size() + value.size());
    input.append(seed).append(value);
    std::string out;
    appendMurmur3Hex(out, input);
    OPENSSL_cleanse(input.data(), input.size());  // it holds the seed
    return out;
}

}  // namespace sluice::privacy
