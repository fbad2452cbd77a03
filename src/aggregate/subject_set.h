// The data subjects (people) of one aggregated group, counted exactly for k-anonymity.
//
// A group is shown to the analyst only when it holds at least min_group_size distinct data
// subjects, so the count must be exact around that threshold: an estimate that says 5 for a
// group of 4 people would publish it. A SubjectSet keeps the keyed 64-bit fingerprints of the
// group's subjects exactly, up to kExactLimit of them; past that it only remembers that there
// are more ("saturated"), which is all a threshold of at most kExactLimit needs. Fingerprints
// are SipHash-2-4 values under the aggregation key, so a stored set cannot be tested for a
// given person without the master key. Two distinct subjects share a fingerprint with
// probability below 2^-48 per group of 256.
//
// Serialized forms (the subject_set blobs in the agg_* tables); the first byte names the form:
//   exact      0x03, varint n (LEB128, n <= kExactLimit), then the n fingerprints as 8 bytes
//              little-endian each, strictly increasing
//   saturated  0x04 and nothing else: more than kExactLimit distinct subjects
// Equal contents give equal bytes (canonical).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice::aggregate {

class SubjectSet {
public:
    static constexpr size_t kExactLimit = 256;
    static constexpr uint8_t kFormatExact = 0x03;
    static constexpr uint8_t kFormatSaturated = 0x04;

    void add(uint64_t fingerprint);
    // Afterwards this set holds the union.
    void merge(const SubjectSet& other);

    // The number of distinct subjects, or kExactLimit + 1 once there are more than kExactLimit.
    size_t count() const;
    bool saturated() const { return count() > kExactLimit; }

    void serialize(std::string& out) const;
    std::string serialize() const;
    // Fails with kCorruption, never crashes, on anything that is not a valid set.
    static Result<SubjectSet> parse(std::string_view blob);

    // Sorts and removes repeated fingerprints (what const readers do on a copy otherwise).
    void compact();

    friend bool operator==(const SubjectSet& a, const SubjectSet& b);

private:
    std::vector<uint64_t> fingerprints_;  // unsorted with repeats until compact()
    bool sorted_ = true;
    bool saturated_ = false;
};

// The SQL functions sluice_subjects_merge(a, b) and sluice_subjects_count(a), for the writer to
// register. std::nullopt stands for SQL NULL and reads as the empty set. Corrupt input is an error.
Result<std::string> mergeSubjectSets(std::optional<std::string_view> a, std::optional<std::string_view> b);
Result<int64_t> countSubjectSet(std::optional<std::string_view> blob);

}  // namespace sluice::aggregate
