#include "privacy/aes_ni.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace sluice::privacy::aesni {

#if defined(__x86_64__)
namespace {

// Only these functions use the instructions; the rest of the program is built for any x86-64.
#define SLUICE_AESNI __attribute__((target("aes,sse4.1")))

// One round key of the AES-256 schedule from the one two back (`a`) and the word that enters it
// (`word`, broadcast to all four lanes): word i of the result is a[0] ^ ... ^ a[i] ^ word.
SLUICE_AESNI __m128i nextRoundKey(__m128i a, __m128i word)
{
    a = _mm_xor_si128(a, _mm_slli_si128(a, 4));  // word i: a[i] ^ a[i-1]
    a = _mm_xor_si128(a, _mm_slli_si128(a, 8));  // word i: a[i] ^ a[i-1] ^ a[i-2] ^ a[i-3]
    return _mm_xor_si128(a, word);
}

// AESKEYGENASSIST takes its round constant as an immediate.
template <int Rcon>
SLUICE_AESNI void expandPair(__m128i* rk, int i)
{
    // Even round keys: RotWord(SubWord(w)) ^ rcon of the previous key's last word (lane 3).
    rk[i] = nextRoundKey(rk[i - 2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[i - 1], Rcon), 0xff));
    if (i + 1 < 15)  // odd round keys: SubWord of the new key's last word (lane 2), no rcon
        rk[i + 1] = nextRoundKey(rk[i - 1], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[i], 0), 0xaa));
}

SLUICE_AESNI __m128i encryptBlock(const __m128i* rk, __m128i x)
{
    x = _mm_xor_si128(x, rk[0]);
    for (int r = 1; r < 14; ++r)
        x = _mm_aesenc_si128(x, rk[r]);
    return _mm_aesenclast_si128(x, rk[14]);
}

const __m128i* roundKeys(const RoundKeys256& keys) { return reinterpret_cast<const __m128i*>(keys.bytes.data()); }

}  // namespace

bool available()
{
    static const bool has = __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
    return has;
}

SLUICE_AESNI void expandKey256(const uint8_t* key, RoundKeys256& out)
{
    auto* rk = reinterpret_cast<__m128i*>(out.bytes.data());
    rk[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
    rk[1] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16));
    expandPair<0x01>(rk, 2);
    expandPair<0x02>(rk, 4);
    expandPair<0x04>(rk, 6);
    expandPair<0x08>(rk, 8);
    expandPair<0x10>(rk, 10);
    expandPair<0x20>(rk, 12);
    expandPair<0x40>(rk, 14);
}

SLUICE_AESNI void cbcMac256(const RoundKeys256& keys, const uint8_t* data, size_t blocks, uint8_t* mac)
{
    const __m128i* rk = roundKeys(keys);
    __m128i state = _mm_setzero_si128();
    for (size_t b = 0; b < blocks; ++b)
        state = encryptBlock(rk, _mm_xor_si128(state, _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * b))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(mac), state);
}

SLUICE_AESNI void encryptBlocks256(const RoundKeys256& keys, uint8_t* data, size_t blocks)
{
    const __m128i* rk = roundKeys(keys);
    auto* p = reinterpret_cast<__m128i*>(data);
    size_t b = 0;
    // Four blocks at a time: AESENC has a latency of several cycles and a throughput of one or
    // two per cycle, so independent blocks interleave.
    for (; b + 4 <= blocks; b += 4) {
        __m128i x0 = _mm_xor_si128(_mm_loadu_si128(p + b), rk[0]);
        __m128i x1 = _mm_xor_si128(_mm_loadu_si128(p + b + 1), rk[0]);
        __m128i x2 = _mm_xor_si128(_mm_loadu_si128(p + b + 2), rk[0]);
        __m128i x3 = _mm_xor_si128(_mm_loadu_si128(p + b + 3), rk[0]);
        for (int r = 1; r < 14; ++r) {
            x0 = _mm_aesenc_si128(x0, rk[r]);
            x1 = _mm_aesenc_si128(x1, rk[r]);
            x2 = _mm_aesenc_si128(x2, rk[r]);
            x3 = _mm_aesenc_si128(x3, rk[r]);
        }
        _mm_storeu_si128(p + b, _mm_aesenclast_si128(x0, rk[14]));
        _mm_storeu_si128(p + b + 1, _mm_aesenclast_si128(x1, rk[14]));
        _mm_storeu_si128(p + b + 2, _mm_aesenclast_si128(x2, rk[14]));
        _mm_storeu_si128(p + b + 3, _mm_aesenclast_si128(x3, rk[14]));
    }
    for (; b < blocks; ++b)
        _mm_storeu_si128(p + b, encryptBlock(rk, _mm_loadu_si128(p + b)));
}

#else  // not x86-64: no AES-NI; the callers take OpenSSL's path, and these are never reached

bool available() { return false; }
void expandKey256(const uint8_t*, RoundKeys256&) { __builtin_trap(); }
void cbcMac256(const RoundKeys256&, const uint8_t*, size_t, uint8_t*) { __builtin_trap(); }
void encryptBlocks256(const RoundKeys256&, uint8_t*, size_t) { __builtin_trap(); }

#endif

}  // namespace sluice::privacy::aesni
