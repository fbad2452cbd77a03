#include <catch2/catch.hpp>

#include "core/encoding.h"
#include "privacy/hmac.h"
#include "test_util.h"

using namespace sluice;
using namespace sluice::privacy;
using sluice::privacy::testing::unhex;

namespace {

std::string hexMac(HmacSha256& h, std::string_view data)
{
    std::string out;
    REQUIRE(h.appendHex(data, out));
    return out;
}

}  // namespace

TEST_CASE("RFC 4231 HMAC-SHA-256 test cases 1-4, 6, 7", "[hmac]")
{
    struct Case {
        int number;
        std::string key;
        std::string data;
        const char* mac;
    };
    const Case cases[] = {
        {1, std::string(20, '\x0b'), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {2, "Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {3, std::string(20, '\xaa'), std::string(50, '\xdd'),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {4, unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), std::string(50, '\xcd'),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {6, std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {7, std::string(131, '\xaa'),
         "This is a test using a larger than block-size key and a larger than block-size data. The key needs to "
         "be hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (const auto& c : cases) {
        INFO("RFC 4231 test case " << c.number);
        auto h = HmacSha256::create(c.key);
        REQUIRE(h);
        CHECK(hexMac(*h, c.data) == c.mac);
        // The context is reused: a second value gives the same answer again.
        CHECK(hexMac(*h, c.data) == c.mac);
        auto digest = h->mac(c.data);
        REQUIRE(digest);
        CHECK(toHex({reinterpret_cast<const char*>(digest->data()), digest->size()}) == c.mac);
    }
}

TEST_CASE("HMAC-SHA256 reuse and clone do not mix values", "[hmac]")
{
    auto h = HmacSha256::create("Jefe");
    REQUIRE(h);
    std::string first = hexMac(*h, "a");
    std::string second = hexMac(*h, "b");
    CHECK(first != second);
    CHECK(hexMac(*h, "a") == first);
    auto clone = h->clone();
    REQUIRE(clone);
    CHECK(hexMac(*clone, "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(hexMac(*h, "") == hexMac(*clone, ""));
    auto empty = HmacSha256::create("");
    REQUIRE(empty);
    // HMAC-SHA256 with an empty key and empty message (well-known value).
    CHECK(hexMac(*empty, "") == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}
