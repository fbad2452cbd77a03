#include "aggregate/siphash.h"

#include <string.h>  // explicit_bzero

namespace sluice::aggregate {
namespace {

uint64_t load64(const unsigned char* p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8) | p[i];
    return v;
}

constexpr uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct State {
    uint64_t v0, v1, v2, v3;

    void round()
    {
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
    }

    void compress(uint64_t m)
    {
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    }
};

}  // namespace

SipHash24::SipHash24(std::span<const uint8_t, kSipKeyBytes> key)
    : k0_(load64(key.data())), k1_(load64(key.data() + 8))
{
}

SipHash24::~SipHash24()
{
    explicit_bzero(&k0_, sizeof k0_);
    explicit_bzero(&k1_, sizeof k1_);
}

uint64_t SipHash24::operator()(std::string_view data) const
{
    // The constants spell "somepseudorandomlygeneratedbytes".
    State s{k0_ ^ 0x736f6d6570736575ULL, k1_ ^ 0x646f72616e646f6dULL,
            k0_ ^ 0x6c7967656e657261ULL, k1_ ^ 0x7465646279746573ULL};
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    const size_t n = data.size();
    const size_t whole = n & ~size_t{7};
    for (size_t i = 0; i < whole; i += 8)
        s.compress(load64(p + i));

    // The last word holds the remaining bytes and, in its top byte, the length mod 256.
    uint64_t last = static_cast<uint64_t>(n & 0xff) << 56;
    for (size_t i = 0; i < (n & 7); ++i)
        last |= static_cast<uint64_t>(p[whole + i]) << (8 * i);
    s.compress(last);

    s.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i)
        s.round();
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace sluice::aggregate
