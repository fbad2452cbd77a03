#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "aggregate/hyper_log_log.h"

using namespace sluice::aggregate;

namespace {

// A bijection on 64-bit words (splitmix64's finaliser): distinct inputs give distinct hashes.
uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

HyperLogLog sketchOf(uint64_t first, uint64_t count)
{
    HyperLogLog h;
    for (uint64_t i = first; i < first + count; ++i)
        h.add(mix(i));
    return h;
}

std::string bytes(std::initializer_list<int> list)
{
    std::string out;
    for (int b : list)
        out += static_cast<char>(b);
    return out;
}

}  // namespace

TEST_CASE("an empty sketch estimates 0 and serializes to two bytes", "[hll]")
{
    HyperLogLog h;
    CHECK(h.empty());
    CHECK(h.estimate() == 0.0);
    CHECK(h.serialize() == bytes({0x01, 0x00}));
    auto back = HyperLogLog::parse(h.serialize());
    REQUIRE(back);
    CHECK(back->empty());
}

TEST_CASE("rank and index come from the hash bits", "[hll]")
{
    HyperLogLog h;
    h.add(0);                          // register 0, all 50 remaining bits zero: the maximum rank
    h.add(uint64_t{1} << 63);          // register 8192, rank 51
    h.add((uint64_t{5} << 50) | (uint64_t{1} << 49));  // register 5, rank 1
    h.add((uint64_t{5} << 50) | 1);    // register 5, rank 50: the larger wins
    CHECK(h.registerValue(0) == HyperLogLog::kMaxRank);
    CHECK(h.registerValue(8192) == 51);
    CHECK(h.registerValue(5) == 50);
    CHECK(h.registerValue(6) == 0);
    CHECK(h.nonZeroRegisters() == 3);
}

TEST_CASE("small cardinalities are estimated almost exactly", "[hll]")
{
    for (uint64_t n : {1, 2, 10, 100, 300}) {
        HyperLogLog h = sketchOf(n * 1000, n);
        INFO("n = " << n << ", estimate " << h.estimate());
        CHECK(std::abs(h.estimate() - static_cast<double>(n)) <= std::max(1.0, 0.01 * static_cast<double>(n)));
        // Repeats change nothing.
        HyperLogLog again = h;
        for (uint64_t i = n * 1000; i < n * 1000 + n; ++i)
            again.add(mix(i));
        CHECK(again.serialize() == h.serialize());
    }
}

TEST_CASE("estimates stay within 2.5% from 1k to 1M distinct values", "[hll][accuracy]")
{
    // Standard error 0.81%; 2.5% is about three of them. Fixed seeds, so the outcome is fixed.
    for (uint64_t n : {1'000, 10'000, 100'000, 1'000'000}) {
        for (uint64_t seed : {1, 2, 3}) {
            HyperLogLog h = sketchOf(seed << 40, n);
            double error = h.estimate() / static_cast<double>(n) - 1.0;
            INFO("n = " << n << " seed " << seed << " relative error " << error);
            CHECK(std::abs(error) < 0.025);
        }
    }
}

TEST_CASE("sparse sketches turn dense past 4096 registers; the bytes depend only on the registers", "[hll]")
{
    HyperLogLog small = sketchOf(0, 3000);
    CHECK_FALSE(small.isDense());
    CHECK(static_cast<uint8_t>(small.serialize()[0]) == HyperLogLog::kFormatSparse);
    CHECK(small.serialize().size() < 3 * 3000);

    HyperLogLog big = sketchOf(0, 20000);
    CHECK(big.isDense());
    CHECK(static_cast<uint8_t>(big.serialize()[0]) == HyperLogLog::kFormatDense);
    CHECK(big.serialize().size() == HyperLogLog::kDenseBytes);

    // A sketch that is dense in memory but holds few registers serializes sparse, to the same
    // bytes as the sparse sketch of the same values.
    HyperLogLog denseFew;
    denseFew.merge(big);
    HyperLogLog onlyBig = sketchOf(0, 20000);
    CHECK(denseFew == onlyBig);
    HyperLogLog tiny = sketchOf(50000, 10);
    HyperLogLog tinyDense = sketchOf(50000, 10);
    tinyDense.merge(HyperLogLog::parse(std::string(1, '\x02') + std::string(HyperLogLog::kDenseBytes - 1, '\0')).value());
    CHECK(tinyDense.isDense());
    CHECK_FALSE(tiny.isDense());
    CHECK(tinyDense == tiny);
    CHECK(tinyDense.serialize() == tiny.serialize());

    // Round trips keep the registers and the bytes.
    for (const HyperLogLog* h : {&small, &big, &tiny}) {
        auto back = HyperLogLog::parse(h->serialize());
        REQUIRE(back);
        CHECK(*back == *h);
        CHECK(back->serialize() == h->serialize());
        CHECK(back->estimate() == h->estimate());
    }
}

TEST_CASE("merging any mix of forms equals the sketch of the union", "[hll]")
{
    // Overlapping ranges of values; sizes chosen to give sparse and dense sketches.
    struct Range {
        uint64_t first;
        uint64_t count;
    };
    const Range ranges[] = {{0, 0}, {0, 100}, {50, 2000}, {1000, 5000}, {3000, 60000}, {0, 200000}};
    for (const Range& a : ranges) {
        for (const Range& b : ranges) {
            HyperLogLog x = sketchOf(a.first, a.count);
            HyperLogLog y = sketchOf(b.first, b.count);
            uint64_t lo = std::min(a.count ? a.first : b.first, b.count ? b.first : a.first);
            uint64_t hi = std::max(a.first + a.count, b.first + b.count);
            HyperLogLog expected;
            for (uint64_t i = lo; i < hi; ++i)
                if ((i >= a.first && i < a.first + a.count) || (i >= b.first && i < b.first + b.count))
                    expected.add(mix(i));
            INFO("a = [" << a.first << ", +" << a.count << ") b = [" << b.first << ", +" << b.count << ")");

            HyperLogLog merged = x;
            merged.merge(y);
            CHECK(merged == expected);
            CHECK(merged.serialize() == expected.serialize());

            auto viaBlobs = mergeSerialized(x.serialize(), y.serialize());
            REQUIRE(viaBlobs);
            CHECK(*viaBlobs == expected.serialize());
            auto estimate = estimateSerialized(*viaBlobs);
            REQUIRE(estimate);
            CHECK(*estimate == expected.estimate());
        }
    }
}

TEST_CASE("merging a sketch with itself or an empty one changes nothing", "[hll]")
{
    HyperLogLog h = sketchOf(7, 9000);
    const std::string before = h.serialize();
    h.merge(h);
    CHECK(h.serialize() == before);
    h.merge(HyperLogLog{});
    CHECK(h.serialize() == before);
}

TEST_CASE("SQL NULL reads as the empty sketch", "[hll]")
{
    const std::string blob = sketchOf(0, 500).serialize();
    auto both = mergeSerialized(std::nullopt, std::nullopt);
    REQUIRE(both);
    CHECK(*both == HyperLogLog{}.serialize());
    auto left = mergeSerialized(std::nullopt, blob);
    auto right = mergeSerialized(blob, std::nullopt);
    REQUIRE(left);
    REQUIRE(right);
    CHECK(*left == blob);
    CHECK(*right == blob);
    auto zero = estimateSerialized(std::nullopt);
    REQUIRE(zero);
    CHECK(*zero == 0.0);
    CHECK_FALSE(mergeSerialized(std::string_view("x"), std::nullopt));
    CHECK_FALSE(mergeSerialized(std::nullopt, std::string_view("")));
    CHECK_FALSE(estimateSerialized(std::string_view("\x02")));
}

TEST_CASE("corrupt blobs fail to parse with a reason", "[hll]")
{
    std::string dense = sketchOf(0, 50000).serialize();
    REQUIRE(dense.size() == HyperLogLog::kDenseBytes);
    std::string denseBadRegister = dense;
    denseBadRegister[1] = static_cast<char>(52);  // register 0 = 52 > kMaxRank
    std::string denseAll63 = std::string(1, '\x02') + std::string(HyperLogLog::kDenseBytes - 1, '\xff');

    struct Case {
        const char* what;
        std::string blob;
    };
    const Case cases[] = {
        {"empty", ""},
        {"unknown format 0", bytes({0x00, 0x00})},
        {"unknown format 3", bytes({0x03, 0x00})},
        {"dense too short", dense.substr(0, dense.size() - 1)},
        {"dense too long", dense + "x"},
        {"dense format byte only", bytes({0x02})},
        {"dense register 52", denseBadRegister},
        {"dense registers 63", denseAll63},
        {"sparse without count", bytes({0x01})},
        {"sparse count truncated", bytes({0x01, 0x80})},
        {"sparse count too large", bytes({0x01, 0x81, 0x80, 0x01})},
        {"sparse count beyond the data", bytes({0x01, 0x05, 0x01})},
        {"sparse entry truncated", bytes({0x01, 0x01, 0x80})},
        {"sparse entry overlong", bytes({0x01, 0x01, 0x81, 0x80, 0x80, 0x00})},
        {"sparse rank 0", bytes({0x01, 0x01, 0x40})},
        {"sparse rank 52", bytes({0x01, 0x01, 0x34})},
        {"sparse rank 63", bytes({0x01, 0x01, 0x3f})},
        {"sparse index 16384", bytes({0x01, 0x01, 0x81, 0x80, 0x40})},
        {"sparse index repeated", bytes({0x01, 0x02, 0x41, 0x01})},
        {"sparse zero delta", bytes({0x01, 0x02, 0x41, 0x00})},
        {"sparse trailing bytes", bytes({0x01, 0x01, 0x41, 0x00})},
        {"sparse empty with trailing byte", bytes({0x01, 0x00, 0x00})},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        auto parsed = HyperLogLog::parse(c.blob);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.status().code() == sluice::StatusCode::kCorruption);
        CHECK(parsed.status().message().find("HyperLogLog") != std::string::npos);
    }
    // And the valid neighbours of some of them do parse.
    CHECK(HyperLogLog::parse(bytes({0x01, 0x01, 0x41})));           // register 1, rank 1
    CHECK(HyperLogLog::parse(bytes({0x01, 0x01, 0xf3, 0xff, 0x3f}))); // register 16383, rank 51
    CHECK(HyperLogLog::parse(bytes({0x01, 0x02, 0x41, 0x40})));     // registers 1 and 2
}

TEST_CASE("parse never misbehaves on mutated or random input", "[hll]")
{
    std::mt19937_64 rng(42);
    const std::string seeds[] = {sketchOf(0, 40).serialize(), sketchOf(0, 3000).serialize(),
                                 sketchOf(0, 100000).serialize()};
    for (int round = 0; round < 3000; ++round) {
        std::string blob = seeds[static_cast<size_t>(round) % 3];
        switch (rng() % 4) {
        case 0:  // flip bits
            for (int k = 0; k < 3; ++k)
                blob[rng() % blob.size()] ^= static_cast<char>(1u << (rng() % 8));
            break;
        case 1:  // truncate
            blob.resize(rng() % blob.size());
            break;
        case 2:  // append
            blob += static_cast<char>(rng());
            break;
        default:  // random bytes with a valid format byte
            blob.assign(rng() % 64, '\0');
            for (char& ch : blob)
                ch = static_cast<char>(rng());
            if (!blob.empty())
                blob[0] = static_cast<char>(1 + rng() % 2);
        }
        auto parsed = HyperLogLog::parse(blob);
        if (parsed) {
            // Whatever parses is a well-formed sketch: its canonical form parses to itself.
            std::string canonical = parsed->serialize();
            auto again = HyperLogLog::parse(canonical);
            REQUIRE(again);
            CHECK(*again == *parsed);
            CHECK(std::isfinite(parsed->estimate()));
        }
    }
}

TEST_CASE("the serialized form turns dense above kSparseMaxSerialized registers, never larger", "[hll]")
{
    // A hash that sets register `index` to `rank` (1..51).
    auto hashFor = [](uint32_t index, int rank) {
        uint64_t low = rank >= HyperLogLog::kMaxRank ? 0 : uint64_t{1} << (50 - rank);
        return (uint64_t{index} << 50) | low;
    };
    // Every second register with ranks alternating 1 and 51: every entry needs two bytes, the
    // worst case short of long gaps.
    for (size_t n : {HyperLogLog::kSparseMaxSerialized - 1, HyperLogLog::kSparseMaxSerialized,
                     HyperLogLog::kSparseMaxSerialized + 1, size_t{8192}}) {
        HyperLogLog h;
        for (uint32_t i = 0; i < n; ++i)
            h.add(hashFor(2 * i, i % 2 ? 1 : 51));
        INFO("registers " << n);
        REQUIRE(h.nonZeroRegisters() == n);
        const std::string blob = h.serialize();
        CHECK(blob.size() <= HyperLogLog::kDenseBytes);
        CHECK(static_cast<uint8_t>(blob[0]) ==
              (n <= HyperLogLog::kSparseMaxSerialized ? HyperLogLog::kFormatSparse : HyperLogLog::kFormatDense));
        auto back = HyperLogLog::parse(blob);
        REQUIRE(back);
        CHECK(*back == h);
    }
    // Long gaps: 63 registers 256 apart take three bytes each.
    HyperLogLog sparse;
    for (uint32_t i = 0; i < 63; ++i)
        sparse.add(hashFor(256 * (i + 1), 51));
    CHECK(sparse.serialize().size() == 1 + 1 + 63 * 3);
}
