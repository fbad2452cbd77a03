// Masking of field values in derived outputs (spec section 5, "Masking"):
//   hmac-sha256: lowercase hex of HMAC-SHA256(seed, value), 64 characters;
//   murmur3:     hex(h1) + hex(h2) of MurmurHash3_x64_128(seed + value, 0), halves without
//                leading zeros (STRM Privacy compatible).
// A Masker owns a keyed context and a scratch buffer: one per worker thread, made with
// create() once and clone() for the other threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/spec.h"
#include "core/status.h"
#include "privacy/hmac.h"
#include "privacy/secret.h"

namespace sluice::privacy {

class Masker {
public:
    // `seed` is the output's masking secret (readMaskSeed). An empty seed is valid for murmur3
    // (STRM Privacy's outputs made without one); hmac-sha256 refuses it, kInvalidArgument.
    static Result<Masker> create(MaskAlgorithm algorithm, SecretBytes seed);
    Result<Masker> clone() const;

    Masker(Masker&&) noexcept = default;
    Masker& operator=(Masker&&) noexcept = default;
    ~Masker();

    MaskAlgorithm algorithm() const { return algorithm_; }

    // Appends the mask of `value` to `out`.
    Status append(std::string_view value, std::string& out);
    Result<std::string> mask(std::string_view value);

private:
    Masker(MaskAlgorithm algorithm, SecretBytes seed) : algorithm_(algorithm), seed_(std::move(seed)) {}

    MaskAlgorithm algorithm_;
    SecretBytes seed_;
    std::optional<HmacSha256> hmac_;  // kHmacSha256
    std::string scratch_;              // kMurmur3: seed + value; wiped before it is released
};

// Reads a masking seed file (a pipeline output's seed_file): its bytes, one trailing newline
// removed. An empty file is an empty seed for murmur3 and refused, with the reason, for
// hmac-sha256.
Result<SecretBytes> readMaskSeed(const std::string& path, MaskAlgorithm algorithm);

}  // namespace sluice::privacy
