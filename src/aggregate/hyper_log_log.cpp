#include "aggregate/hyper_log_log.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>

namespace sluice::aggregate {
namespace {

constexpr int kRankBits = 6;
constexpr uint32_t kRankMask = (1u << kRankBits) - 1;
constexpr int kQ = 64 - HyperLogLog::kPrecision;  // hash bits left for the rank
// Entries are below 2^20, so a difference of two fits three 7-bit varint groups.
constexpr uint32_t kEntryLimit = HyperLogLog::kRegisters << kRankBits;

constexpr uint32_t entryIndex(uint32_t e) { return e >> kRankBits; }
constexpr uint8_t entryRank(uint32_t e) { return static_cast<uint8_t>(e & kRankMask); }

// Sorts by (index, rank) and keeps, per index, the last entry: the largest rank.
void sortUnique(std::vector<uint32_t>& entries)
{
    std::sort(entries.begin(), entries.end());
    size_t out = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
        if (i + 1 < entries.size() && entryIndex(entries[i + 1]) == entryIndex(entries[i]))
            continue;
        entries[out++] = entries[i];
    }
    entries.resize(out);
}

void appendVarint(std::string& out, uint32_t v)
{
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

// Reads a varint of at most 3 bytes at `pos`; false on truncation or a longer varint.
bool readVarint(std::string_view in, size_t& pos, uint32_t& value)
{
    value = 0;
    for (int shift = 0; shift < 21; shift += 7) {
        if (pos >= in.size())
            return false;
        auto b = static_cast<uint8_t>(in[pos++]);
        value |= static_cast<uint32_t>(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

// Ertl's sigma and tau (arXiv:1702.01284), each summed as a series until the partial sum stops
// changing in double precision. tau is in the form sum_k 2^-k (1 - x^(2^-k)) x^(2^-k), equal to
// the paper's (1 - x - sum_k 2^-k (1 - x^(2^-k))^2) / 3 and free of its cancellation.
double sigma(double x)
{
    if (x == 1.0)
        return std::numeric_limits<double>::infinity();
    double y = 1.0;
    double z = x;
    for (;;) {
        x *= x;
        double before = z;
        z += x * y;
        y += y;
        if (z == before)
            return z;
    }
}

double tau(double x)
{
    if (x == 0.0 || x == 1.0)
        return 0.0;
    double y = 1.0;
    double z = 0.0;
    for (;;) {
        x = std::sqrt(x);
        double before = z;
        y *= 0.5;
        z += (1.0 - x) * x * y;
        if (z == before)
            return z;
    }
}

// Eight 6-bit registers per six bytes, little-endian (the same layout as four per three).
void packDense(const uint8_t* r, char* out)
{
    for (uint32_t i = 0; i < HyperLogLog::kRegisters; i += 8, out += 6) {
        uint64_t word = 0;
        for (int k = 7; k >= 0; --k)
            word = (word << 6) | r[i + static_cast<uint32_t>(k)];
        for (int k = 0; k < 6; ++k)
            out[k] = static_cast<char>((word >> (8 * k)) & 0xff);
    }
}

void unpackDense(const uint8_t* in, uint8_t* r)
{
    constexpr uint32_t kLast = HyperLogLog::kRegisters - 8;
    for (uint32_t i = 0; i <= kLast; i += 8, in += 6) {
        uint64_t word = 0;
        if (i < kLast && std::endian::native == std::endian::little) {
            std::memcpy(&word, in, 8);  // two bytes of the next group come along; masked off
        } else {
            for (int k = 5; k >= 0; --k)
                word = (word << 8) | in[k];
        }
        for (uint32_t k = 0; k < 8; ++k)
            r[i + k] = static_cast<uint8_t>((word >> (6 * k)) & 0x3f);
    }
}

Status corrupt(const char* what) { return Status::corruption(std::string("HyperLogLog sketch: ") + what); }

}  // namespace

void HyperLogLog::add(uint64_t hash)
{
    auto index = static_cast<uint32_t>(hash >> kQ);
    uint64_t rest = hash << kPrecision;
    auto rank = static_cast<uint8_t>(rest == 0 ? kMaxRank : std::countl_zero(rest) + 1);
    if (!dense_.empty()) {
        uint8_t& r = dense_[index];
        if (rank > r)
            r = rank;
        return;
    }
    uint32_t entry = (index << kRankBits) | rank;
    if (sorted_ && !sparse_.empty() && entryIndex(sparse_.back()) >= index)
        sorted_ = false;
    sparse_.push_back(entry);
    if (sparse_.size() >= compactAt_)
        compact();
}

void HyperLogLog::compact()
{
    if (!dense_.empty())
        return;
    if (!sorted_) {
        sortUnique(sparse_);
        sorted_ = true;
    }
    if (sparse_.size() > kSparseMaxEntries) {
        toDense();
        return;
    }
    compactAt_ = std::max<size_t>(64, sparse_.size() * 2);
}

void HyperLogLog::toDense()
{
    dense_.assign(kRegisters, 0);
    for (uint32_t e : sparse_) {
        uint8_t& r = dense_[entryIndex(e)];
        r = std::max(r, entryRank(e));
    }
    sparse_.clear();
    sparse_.shrink_to_fit();
    sorted_ = true;
}

void HyperLogLog::merge(const HyperLogLog& other)
{
    if (&other == this)
        return;
    if (!other.dense_.empty()) {
        if (dense_.empty())
            toDense();
        uint8_t* __restrict a = dense_.data();
        const uint8_t* __restrict b = other.dense_.data();
        for (uint32_t i = 0; i < kRegisters; ++i)
            a[i] = std::max(a[i], b[i]);
        return;
    }
    if (!dense_.empty()) {
        for (uint32_t e : other.sparse_) {
            uint8_t& r = dense_[entryIndex(e)];
            r = std::max(r, entryRank(e));
        }
        return;
    }
    if (other.sparse_.empty())
        return;
    if (sorted_ && other.sorted_) {
        // Both sorted with unique indexes (two parsed sketches: the writer's upserts): one
        // linear pass instead of a sort. For one index the larger entry has the larger rank.
        std::vector<uint32_t> out;
        out.reserve(sparse_.size() + other.sparse_.size());
        auto a = sparse_.begin();
        auto b = other.sparse_.begin();
        while (a != sparse_.end() && b != other.sparse_.end()) {
            const uint32_t ia = entryIndex(*a), ib = entryIndex(*b);
            if (ia < ib) {
                out.push_back(*a++);
            } else if (ib < ia) {
                out.push_back(*b++);
            } else {
                out.push_back(std::max(*a++, *b++));
            }
        }
        out.insert(out.end(), a, sparse_.end());
        out.insert(out.end(), b, other.sparse_.end());
        sparse_.swap(out);
        compact();
        return;
    }
    sparse_.insert(sparse_.end(), other.sparse_.begin(), other.sparse_.end());
    sorted_ = false;
    compact();
}

template <typename F>
void HyperLogLog::forEachRegister(F&& f) const
{
    if (!dense_.empty()) {
        for (uint32_t i = 0; i < kRegisters; ++i)
            if (dense_[i])
                f(i, dense_[i]);
        return;
    }
    std::vector<uint32_t> copy;
    std::span<const uint32_t> entries = sparse_;
    if (!sorted_) {
        copy = sparse_;
        sortUnique(copy);
        entries = copy;
    }
    for (uint32_t e : entries)
        f(entryIndex(e), entryRank(e));
}

uint8_t HyperLogLog::registerValue(uint32_t index) const
{
    if (index >= kRegisters)
        return 0;
    if (!dense_.empty())
        return dense_[index];
    uint8_t best = 0;
    for (uint32_t e : sparse_)
        if (entryIndex(e) == index)
            best = std::max(best, entryRank(e));
    return best;
}

uint32_t HyperLogLog::nonZeroRegisters() const
{
    uint32_t n = 0;
    forEachRegister([&](uint32_t, uint8_t) { ++n; });
    return n;
}

double HyperLogLog::estimate() const
{
    uint32_t counts[kMaxRank + 1] = {};
    uint32_t nonZero = 0;
    if (!dense_.empty()) {
        // Four histograms, so that consecutive equal registers do not wait on each other.
        uint32_t part[4][64] = {};
        for (uint32_t i = 0; i < kRegisters; i += 4)
            for (uint32_t k = 0; k < 4; ++k)
                ++part[k][dense_[i + k]];
        for (uint32_t v = 1; v <= kMaxRank; ++v) {
            counts[v] = part[0][v] + part[1][v] + part[2][v] + part[3][v];
            nonZero += counts[v];
        }
    } else {
        forEachRegister([&](uint32_t, uint8_t rank) {
            ++counts[rank];
            ++nonZero;
        });
    }
    if (nonZero == 0)
        return 0.0;
    counts[0] = kRegisters - nonZero;

    const double m = kRegisters;
    double z = m * tau(1.0 - counts[kQ + 1] / m);
    for (int k = kQ; k >= 1; --k)
        z = 0.5 * (z + counts[k]);
    z += m * sigma(counts[0] / m);
    return m * m / (2.0 * std::log(2.0)) / z;
}

void HyperLogLog::serialize(std::string& out) const
{
    uint32_t n = 0;
    if (!dense_.empty()) {
        for (uint8_t r : dense_)
            n += r != 0;
    } else {
        n = nonZeroRegisters();
    }

    if (n <= kSparseMaxSerialized) {
        out += static_cast<char>(kFormatSparse);
        appendVarint(out, n);
        uint32_t previous = 0;
        forEachRegister([&](uint32_t index, uint8_t rank) {
            uint32_t entry = (index << kRankBits) | rank;
            appendVarint(out, entry - previous);
            previous = entry;
        });
        return;
    }

    size_t start = out.size();
    out.resize(start + kDenseBytes);
    out[start] = static_cast<char>(kFormatDense);
    if (!dense_.empty()) {
        packDense(dense_.data(), out.data() + start + 1);
        return;
    }
    // Sparse in memory with more registers than kSparseMaxSerialized: possible only while
    // entries added since the last compact() are pending.
    std::vector<uint8_t> regs(kRegisters, 0);
    forEachRegister([&](uint32_t index, uint8_t rank) { regs[index] = rank; });
    packDense(regs.data(), out.data() + start + 1);
}

std::string HyperLogLog::serialize() const
{
    std::string out;
    serialize(out);
    return out;
}

Result<HyperLogLog> HyperLogLog::parse(std::string_view blob)
{
    if (blob.empty())
        return corrupt("empty");
    HyperLogLog h;
    auto format = static_cast<uint8_t>(blob[0]);
    if (format == kFormatDense) {
        if (blob.size() != kDenseBytes)
            return corrupt("dense form of the wrong size");
        h.dense_.resize(kRegisters);
        unpackDense(reinterpret_cast<const uint8_t*>(blob.data()) + 1, h.dense_.data());
        uint8_t largest = 0;
        for (uint8_t v : h.dense_)
            largest = std::max(largest, v);  // a max reduction vectorizes; an any() does not
        if (largest > kMaxRank)
            return corrupt("register out of range");
        return h;
    }
    if (format != kFormatSparse)
        return corrupt("unknown format");

    size_t pos = 1;
    uint32_t n = 0;
    if (!readVarint(blob, pos, n) || n > kRegisters)
        return corrupt("bad entry count");
    // Each entry takes at least one byte: refuse a count the blob cannot hold before reserving.
    if (n > blob.size() - pos)
        return corrupt("truncated");
    h.sparse_.reserve(n);
    uint32_t previous = 0;
    for (uint32_t i = 0; i < n; ++i) {
        uint32_t delta = 0;
        if (!readVarint(blob, pos, delta))
            return corrupt("truncated or overlong entry");
        uint32_t entry = previous + delta;
        if (entry >= kEntryLimit)
            return corrupt("register index out of range");
        uint8_t rank = entryRank(entry);
        if (rank == 0 || rank > kMaxRank)
            return corrupt("rank out of range");
        if (i > 0 && entryIndex(entry) <= entryIndex(previous))
            return corrupt("register indexes not increasing");
        h.sparse_.push_back(entry);
        previous = entry;
    }
    if (pos != blob.size())
        return corrupt("trailing bytes");
    h.sorted_ = true;
    h.compact();
    return h;
}

bool operator==(const HyperLogLog& a, const HyperLogLog& b)
{
    std::vector<uint8_t> ra(HyperLogLog::kRegisters, 0);
    std::vector<uint8_t> rb(HyperLogLog::kRegisters, 0);
    a.forEachRegister([&](uint32_t index, uint8_t rank) { ra[index] = rank; });
    b.forEachRegister([&](uint32_t index, uint8_t rank) { rb[index] = rank; });
    return ra == rb;
}

Result<std::string> mergeSerialized(std::optional<std::string_view> a,
                                    std::optional<std::string_view> b)
{
    HyperLogLog merged;
    if (a) {
        auto parsed = HyperLogLog::parse(*a);
        if (!parsed)
            return parsed.status();
        merged = std::move(parsed.value());
    }
    if (b) {
        auto parsed = HyperLogLog::parse(*b);
        if (!parsed)
            return parsed.status();
        merged.merge(*parsed);
    }
    return merged.serialize();
}

Result<double> estimateSerialized(std::optional<std::string_view> blob)
{
    if (!blob)
        return 0.0;
    auto parsed = HyperLogLog::parse(*blob);
    if (!parsed)
        return parsed.status();
    return parsed->estimate();
}

}  // namespace sluice::aggregate
