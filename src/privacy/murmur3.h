// MurmurHash3_x64_128 (Austin Appleby's 128-bit hash for 64-bit platforms) and the masking
// format compatible with STRM Privacy's published outputs. Not a cryptographic function: the
// mask's secrecy comes only from the seed string. Pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::privacy {

struct Murmur3Hash {
    uint64_t h1 = 0;
    uint64_t h2 = 0;
    bool operator==(const Murmur3Hash&) const = default;
};

Murmur3Hash murmur3x64_128(std::string_view data, uint32_t seed = 0);

// Appends hex(h1) + hex(h2) of murmur3x64_128(data, 0), each half as unsigned lowercase hex
// without leading zeros ("0" for a zero half), so 2 to 32 characters.
void appendMurmur3Hex(std::string& out, std::string_view data);

// The murmur3 mask of `value` under `seed`: appendMurmur3Hex of the bytes seed + value.
std::string murmur3Mask(std::string_view seed, std::string_view value);

}  // namespace sluice::privacy
