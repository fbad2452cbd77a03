#include <catch2/catch.hpp>

#include "core/batch.h"
#include "core/value.h"

using namespace sluice;

TEST_CASE("JSON strings are escaped", "[value]")
{
    std::string out;
    appendJsonString(out, std::string("a\"b\\c\n\x01", 7));
    CHECK(out == "\"a\\\"b\\\\c\\n\\u0001\"");
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
