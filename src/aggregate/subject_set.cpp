#include "aggregate/subject_set.h"

#include <algorithm>

namespace sluice::aggregate {

void SubjectSet::add(uint64_t fingerprint)
{
    if (saturated_)
        return;
    if (!fingerprints_.empty()) {
        if (fingerprint == fingerprints_.back())
            return;
        if (fingerprint < fingerprints_.back())
            sorted_ = false;
    }
    fingerprints_.push_back(fingerprint);
    // Repeats are removed in bulk; the set never holds more than twice the limit.
    if (fingerprints_.size() > 2 * kExactLimit)
        compact();
}

void SubjectSet::merge(const SubjectSet& other)
{
    if (saturated_)
        return;
    if (other.saturated_) {
        saturated_ = true;
        fingerprints_.clear();
        fingerprints_.shrink_to_fit();
        sorted_ = true;
        return;
    }
    for (uint64_t f : other.fingerprints_)
        add(f);
}

void SubjectSet::compact()
{
    if (!sorted_) {
        std::sort(fingerprints_.begin(), fingerprints_.end());
        fingerprints_.erase(std::unique(fingerprints_.begin(), fingerprints_.end()), fingerprints_.end());
        sorted_ = true;
    }
    if (fingerprints_.size() > kExactLimit) {
        saturated_ = true;
        fingerprints_.clear();
        fingerprints_.shrink_to_fit();
    }
}

size_t SubjectSet::count() const
{
    if (saturated_)
        return kExactLimit + 1;
    if (sorted_)
        return fingerprints_.size();
    SubjectSet copy = *this;
    copy.compact();
    return copy.count();
}

void SubjectSet::serialize(std::string& out) const
{
    if (!sorted_ || fingerprints_.size() > kExactLimit) {
        SubjectSet copy = *this;
        copy.compact();
        copy.serialize(out);
        return;
    }
    if (saturated_) {
        out += static_cast<char>(kFormatSaturated);
        return;
    }
    out += static_cast<char>(kFormatExact);
    size_t n = fingerprints_.size();
    while (n >= 0x80) {
        out += static_cast<char>((n & 0x7f) | 0x80);
        n >>= 7;
    }
    out += static_cast<char>(n);
    for (uint64_t f : fingerprints_)
        for (int i = 0; i < 8; ++i)
            out += static_cast<char>((f >> (8 * i)) & 0xff);
}

std::string SubjectSet::serialize() const
{
    std::string out;
    serialize(out);
    return out;
}

Result<SubjectSet> SubjectSet::parse(std::string_view blob)
{
    auto corrupt = [](const char* why) { return Status::corruption(std::string("subject set: ") + why); };
    if (blob.empty())
        return corrupt("empty blob");
    SubjectSet s;
    const auto format = static_cast<uint8_t>(blob[0]);
    if (format == kFormatSaturated) {
        if (blob.size() != 1)
            return corrupt("trailing bytes after the saturated form");
        s.saturated_ = true;
        return s;
    }
    if (format != kFormatExact)
        return corrupt("unknown format byte");
    size_t pos = 1;
    size_t n = 0;
    for (int shift = 0;; shift += 7) {
        if (shift > 14 || pos >= blob.size())
            return corrupt("truncated or over-long count");
        const auto b = static_cast<uint8_t>(blob[pos++]);
        n |= static_cast<size_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift > 0)  // a longer varint than needed: not the canonical form
                return corrupt("truncated or over-long count");
            break;
        }
    }
    if (n > kExactLimit)
        return corrupt("more fingerprints than the exact form holds");
    if (blob.size() - pos != n * 8)
        return corrupt("size does not match the count");
    s.fingerprints_.reserve(n);
    for (size_t k = 0; k < n; ++k) {
        uint64_t f = 0;
        for (int i = 0; i < 8; ++i)
            f |= static_cast<uint64_t>(static_cast<uint8_t>(blob[pos + static_cast<size_t>(i)])) << (8 * i);
        pos += 8;
        if (k > 0 && f <= s.fingerprints_.back())
            return corrupt("fingerprints not strictly increasing");
        s.fingerprints_.push_back(f);
    }
    return s;
}

bool operator==(const SubjectSet& a, const SubjectSet& b)
{
    return a.serialize() == b.serialize();
}

Result<std::string> mergeSubjectSets(std::optional<std::string_view> a, std::optional<std::string_view> b)
{
    SubjectSet merged;
    for (const auto& blob : {a, b}) {
        if (!blob)
            continue;
        auto s = SubjectSet::parse(*blob);
        if (!s)
            return s.status();
        merged.merge(*s);
    }
    return merged.serialize();
}

Result<int64_t> countSubjectSet(std::optional<std::string_view> blob)
{
    if (!blob)
        return int64_t{0};
    auto s = SubjectSet::parse(*blob);
    if (!s)
        return s.status();
    return static_cast<int64_t>(s->count());
}

}  // namespace sluice::aggregate
