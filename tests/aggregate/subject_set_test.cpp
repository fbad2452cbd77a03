#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "aggregate/subject_set.h"

using namespace sluice;
using namespace sluice::aggregate;

TEST_CASE("a subject set counts distinct fingerprints exactly up to the limit", "[subjects]")
{
    SubjectSet s;
    CHECK(s.count() == 0);
    CHECK(s.serialize() == std::string("\x03\x00", 2));
    std::mt19937_64 rng(5);
    std::set<uint64_t> truth;
    for (size_t n = 0; truth.size() < SubjectSet::kExactLimit; ++n) {
        // Every fingerprint three times, in random order of first appearance.
        const uint64_t f = rng();
        truth.insert(f);
        s.add(f);
        s.add(f);
        CHECK(s.count() == truth.size());
        s.add(f);
    }
    CHECK_FALSE(s.saturated());
    const std::string blob = s.serialize();
    CHECK(blob.size() == 1 + 2 + 8 * SubjectSet::kExactLimit);  // 256 takes a two-byte varint
    auto parsed = SubjectSet::parse(blob);
    REQUIRE(parsed);
    CHECK(parsed->count() == SubjectSet::kExactLimit);
    CHECK(*parsed == s);

    s.add(*truth.begin());  // a repeat changes nothing
    CHECK(s.count() == SubjectSet::kExactLimit);
    s.add(rng());  // one more subject: more than the limit
    CHECK(s.count() == SubjectSet::kExactLimit + 1);
    CHECK(s.saturated());
    CHECK(s.serialize() == "\x04");
    s.add(rng());
    CHECK(s.count() == SubjectSet::kExactLimit + 1);
}

TEST_CASE("subject sets merge into the set of the union, whatever the order", "[subjects]")
{
    std::mt19937_64 rng(11);
    for (size_t shared : {0u, 10u, 100u, 200u}) {
        std::vector<uint64_t> a, b;
        for (size_t i = 0; i < shared; ++i) {
            const uint64_t f = rng();
            a.push_back(f);
            b.push_back(f);
        }
        for (size_t i = 0; i < 100; ++i)
            a.push_back(rng());
        for (size_t i = 0; i < 50; ++i)
            b.push_back(rng());
        std::shuffle(a.begin(), a.end(), rng);
        SubjectSet x, y, both;
        for (uint64_t f : a)
            x.add(f), both.add(f);
        for (uint64_t f : b)
            y.add(f), both.add(f);
        const size_t distinct = shared + 150;
        INFO("shared " << shared);
        CHECK(both.count() == std::min(distinct, SubjectSet::kExactLimit + 1));
        SubjectSet merged = x;
        merged.merge(y);
        CHECK(merged == both);
        auto viaBlobs = mergeSubjectSets(y.serialize(), x.serialize());
        REQUIRE(viaBlobs);
        CHECK(*viaBlobs == both.serialize());
        auto count = countSubjectSet(*viaBlobs);
        REQUIRE(count);
        CHECK(*count == static_cast<int64_t>(both.count()));
    }
    SubjectSet full;
    for (size_t i = 0; i <= SubjectSet::kExactLimit; ++i)
        full.add(rng());
    SubjectSet one;
    one.add(1);
    one.merge(full);
    CHECK(one.saturated());
}

TEST_CASE("SQL NULL reads as the empty subject set", "[subjects]")
{
    auto both = mergeSubjectSets(std::nullopt, std::nullopt);
    REQUIRE(both);
    CHECK(*both == std::string("\x03\x00", 2));
    SubjectSet s;
    s.add(42);
    auto left = mergeSubjectSets(std::nullopt, s.serialize());
    REQUIRE(left);
    CHECK(*left == s.serialize());
    CHECK(*countSubjectSet(std::nullopt) == 0);
    // The column default of upgraded tables, x'0300', is the empty set.
    CHECK(*countSubjectSet(std::string_view("\x03\x00", 2)) == 0);
}

TEST_CASE("corrupt subject sets fail to parse with a reason", "[subjects]")
{
    SubjectSet two;
    two.add(7);
    two.add(9);
    const std::string good = two.serialize();
    struct Case {
        const char* what;
        std::string blob;
        const char* message;
    };
    std::string descending = good;
    std::swap(descending[2], descending[10]);
    const Case cases[] = {
        {"empty", "", "empty blob"},
        {"unknown format", "\x05", "unknown format byte"},
        {"saturated with bytes", std::string("\x04\x00", 2), "trailing bytes"},
        {"no count", "\x03", "truncated or over-long count"},
        {"over-long count", "\x03\x80\x80\x80\x01", "truncated or over-long count"},
        {"too many", std::string("\x03\x81\x02", 3), "more fingerprints than the exact form holds"},
        {"short", good.substr(0, good.size() - 1), "size does not match the count"},
        {"long", good + "x", "size does not match the count"},
        {"not increasing", descending, "not strictly increasing"},
        {"repeated", std::string("\x03\x02", 2) + std::string(16, '\x01'), "not strictly increasing"},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        auto parsed = SubjectSet::parse(c.blob);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.status().code() == StatusCode::kCorruption);
        CHECK_THAT(parsed.status().message(), Catch::Contains(c.message));
        CHECK_FALSE(mergeSubjectSets(c.blob, std::nullopt));
        CHECK_FALSE(countSubjectSet(c.blob));
    }
    // Random bytes never crash the parser.
    std::mt19937_64 rng(3);
    for (int i = 0; i < 20000; ++i) {
        std::string blob = i % 2 ? good : std::string("\x03", 1);
        const size_t extra = rng() % 24;
        for (size_t k = 0; k < extra; ++k)
            blob += static_cast<char>(rng());
        if (rng() % 3 == 0)
            blob[rng() % blob.size()] = static_cast<char>(rng());
        auto parsed = SubjectSet::parse(blob);
        if (parsed)
            CHECK(parsed->serialize() == blob);
    }
}
