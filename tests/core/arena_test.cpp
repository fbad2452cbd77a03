#include <catch2/catch.hpp>

#include <string>

#include "core/arena.h"

using namespace sluice;

TEST_CASE("arena copies survive later allocations and large requests", "[arena]")
{
    Arena arena(64);
    std::string_view a = arena.copy("hello");
    std::string big(1000, 'x');
    std::string_view b = arena.copy(big);
    std::string_view c = arena.copy("world");
    CHECK(a == "hello");
    CHECK(b == big);
    CHECK(c == "world");
    CHECK(arena.bytes() == 1010);
    CHECK(arena.copy("").empty());
}

TEST_CASE("arena arrays are aligned and value-initialised", "[arena]")
{
    Arena arena(128);
    arena.copy("x");
    auto span = arena.allocateArray<uint64_t>(10);
    REQUIRE(span.size() == 10);
    CHECK(reinterpret_cast<uintptr_t>(span.data()) % alignof(uint64_t) == 0);
    for (auto v : span)
        CHECK(v == 0);
}

TEST_CASE("a rewound arena reuses its memory and hands out fresh space", "[arena]")
{
    Arena arena(64);
    std::string_view first = arena.copy("0123456789");
    std::string big(200, 'b');
    arena.copy(big);
    const char* firstChunk = first.data();
    arena.rewind();
    CHECK(arena.bytes() == 0);
    std::string_view again = arena.copy("abcdefghij");
    CHECK(again.data() == firstChunk);  // the first chunk again
    CHECK(again == "abcdefghij");
    std::string_view large = arena.copy(big);  // needs the big chunk (or a new one)
    CHECK(large == big);
    CHECK(again == "abcdefghij");
}
