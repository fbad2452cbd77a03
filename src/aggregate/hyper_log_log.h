// HyperLogLog (Flajolet et al. 2007) with 2^14 registers over 64-bit hashes, estimated with
// Ertl's improved estimator (2017), which is unbiased from 0 to far beyond 10^9 without
// empirical bias tables. Standard error 1.04 / sqrt(16384) = 0.81%.
//
// Register i holds the largest rank seen among hashes whose top 14 bits are i; the rank of a
// hash is 1 + the number of leading zeros of its remaining 50 bits (51 when they are all 0).
//
// Serialized forms (the blobs in the agg_* tables); the first byte names the form:
//   sparse  0x01, varint n, then n varints: the values (index << 6 | rank) of the non-zero
//           registers in increasing index order, each as the difference to the previous value
//           (the first one as is). Varints are LEB128, at most 3 bytes.
//   dense   0x02, then 12288 bytes: the 16384 registers as 6-bit fields, four registers per
//           three bytes, little-endian (register 4k in the low 6 bits of the 24-bit word k).
// serialize() writes the sparse form when at most kSparseMaxSerialized registers are non-zero
// and the dense form otherwise, so equal register contents always give equal bytes. parse()
// accepts either form for any contents.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice::aggregate {

// One sketch. Starts empty and sparse (no allocation); turns dense, in memory, once it holds
// more than kSparseMaxEntries registers. Not thread-safe, not even for const calls made while
// another thread adds.
class HyperLogLog {
public:
    static constexpr int kPrecision = 14;
    static constexpr uint32_t kRegisters = uint32_t{1} << kPrecision;
    static constexpr uint8_t kMaxRank = 64 - kPrecision + 1;
    static constexpr uint8_t kFormatSparse = 0x01;
    static constexpr uint8_t kFormatDense = 0x02;
    static constexpr size_t kDenseBytes = 1 + kRegisters / 4 * 3;
    // In-memory sparse limit: 4096 entries of 4 bytes take as much memory as the dense form.
    static constexpr size_t kSparseMaxEntries = kRegisters / 4;
    // Serialized sparse limit. A sparse entry takes 1 to 3 bytes, and 3 only after a gap of 256
    // or more registers, which fits at most 63 times into 16384: n entries take at most
    // 1 + 2 + 2n + 63 bytes, no more than the dense form for n up to this.
    static constexpr size_t kSparseMaxSerialized = (kDenseBytes - 1 - 2 - 63) / 2;

    void add(uint64_t hash);
    // Afterwards this sketch holds the register-wise maximum: the sketch of the union.
    void merge(const HyperLogLog& other);

    // Estimated number of distinct hashes added (0 for an empty sketch).
    double estimate() const;

    // Appends the canonical serialized form to `out`.
    void serialize(std::string& out) const;
    std::string serialize() const;
    // Fails with kCorruption, never crashes, on any input that is not a valid sketch.
    static Result<HyperLogLog> parse(std::string_view blob);

    bool empty() const { return dense_.empty() && sparse_.empty(); }
    bool isDense() const { return !dense_.empty(); }
    uint8_t registerValue(uint32_t index) const;
    uint32_t nonZeroRegisters() const;
    // Sorts and deduplicates the pending sparse entries (what const readers otherwise do on a
    // copy). add() and merge() call it as needed.
    void compact();

    // Equal register contents, whatever the in-memory forms.
    friend bool operator==(const HyperLogLog& a, const HyperLogLog& b);

private:
    template <typename F>
    void forEachRegister(F&& f) const;
    void toDense();

    // Sparse form: entries (index << 6 | rank). Sorted with unique indices when sorted_;
    // otherwise unsorted with repeats, and the largest rank per index counts.
    std::vector<uint32_t> sparse_;
    bool sorted_ = true;
    size_t compactAt_ = 64;
    // Dense form: kRegisters bytes, one register each; empty while sparse.
    std::vector<uint8_t> dense_;
};

// The SQL functions sluice_hll_merge(a, b) and sluice_hll_estimate(a), for the writer to
// register. std::nullopt stands for SQL NULL and reads as the empty sketch, so that
// merge(NULL, x) is x (canonicalised) and estimate(NULL) is 0. Corrupt input is an error.
Result<std::string> mergeSerialized(std::optional<std::string_view> a,
                                    std::optional<std::string_view> b);
Result<double> estimateSerialized(std::optional<std::string_view> blob);

}  // namespace sluice::aggregate
