#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "core/batch.h"
#include "core/value.h"

using namespace sluice;

TEST_CASE("JSON strings are escaped", "[value]")
{
    std::string out;
    appendJsonString(out, std::string("a\"b\\c\n\x01", 7));
    CHECK(out == "\"a\\\"b\\\\c\\n\\u0001\"");
}

// appendJsonString skips 8 bytes at a time: every byte JSON escapes (and its neighbours that it
// does not) at every position of a word and of the tail, against escaping byte by byte.
TEST_CASE("JSON strings are escaped at every position", "[value]")
{
    auto byByte = [](std::string_view text) {
        std::string out = "\"";
        for (unsigned char c : text) {
            if (c == '"' || c == '\\') {
                out += '\\';
                out += static_cast<char>(c);
            } else if (c == '\n') {
                out += "\\n";
            } else if (c == '\r') {
                out += "\\r";
            } else if (c == '\t') {
                out += "\\t";
            } else if (c == '\b') {
                out += "\\b";
            } else if (c == '\f') {
                out += "\\f";
            } else if (c < 0x20) {
                static constexpr char kHex[] = "0123456789abcdef";
                out += "\\u00";
                out += kHex[c >> 4];
                out += kHex[c & 15];
            } else {
                out += static_cast<char>(c);
            }
        }
        return out + "\"";
    };
    std::vector<unsigned char> specials;
    for (int c = 0; c < 0x20; ++c)
        specials.push_back(static_cast<unsigned char>(c));
    for (int c : std::initializer_list<int>{'"', '\\', 0x20, '!', '#', '[', ']', 0x7f, 0x80, 0xa2, 0xdc, 0xff})
        specials.push_back(static_cast<unsigned char>(c));
    int escaped = 0;
    for (size_t length : {1, 7, 8, 9, 16, 23, 33}) {
        for (size_t at = 0; at < length; ++at) {
            for (unsigned char c : specials) {
                std::string text(length, 'A');
                for (size_t i = 0; i < length; ++i)
                    text[i] = "QUJDRA+/=9"[i % 10];
                text[at] = static_cast<char>(c);
                if (at + 3 < length)
                    text[at + 3] = '"';  // two escapes in one word
                std::string out = "x";
                appendJsonString(out, text);
                const std::string expected = "x" + byByte(text);
                escaped += expected.size() > text.size() + 3;
                REQUIRE(out == expected);
            }
        }
    }
    CHECK(escaped > 0);
    std::string out;
    appendJsonString(out, "");
    CHECK(out == "\"\"");
}

TEST_CASE("values serialise as compact JSON", "[value]")
{
    Value items[] = {Value::ofInt(1), Value::ofReal(2.5), Value::ofString("x"), Value::ofBool(true)};
    std::string out;
    appendJson(out, Value::ofArray(items));
    CHECK(out == "[1,2.5,\"x\",true]");
}

TEST_CASE("countEvents counts non-blank lines", "[batch]")
{
    CHECK(countEvents("") == 0);
    CHECK(countEvents("{}") == 1);
    CHECK(countEvents("{}\n{}\n") == 2);
    CHECK(countEvents("{}\n\n  \r\n{}") == 2);
}
