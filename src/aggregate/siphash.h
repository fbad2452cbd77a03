// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash. The aggregate stage hashes
// the values that go into HyperLogLog sketches with it, so that whoever reads a sketch cannot
// test it for a given value without the key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace sluice::aggregate {

inline constexpr size_t kSipKeyBytes = 16;

// A SipHash-2-4 key, ready to hash. The key words are wiped when an instance is destroyed.
// Immutable after construction, so one instance may be used by several threads.
class SipHash24 {
public:
    explicit SipHash24(std::span<const uint8_t, kSipKeyBytes> key);
    SipHash24(const SipHash24&) = default;
    SipHash24& operator=(const SipHash24&) = default;
    ~SipHash24();

    uint64_t operator()(std::string_view data) const;

private:
    uint64_t k0_;
    uint64_t k1_;
};

}  // namespace sluice::aggregate
