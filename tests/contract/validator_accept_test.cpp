// Valid events: the values the validator hands on, exactly; strings copied into the arena; the
// line read inside a larger buffer without looking at what follows it.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <cstring>
#include <string>
#include <vector>

#include "fixture.h"

using namespace sluice;
using namespace sluice::contract;
using namespace sluice::contract::testing;

namespace {

bool pointsInto(std::string_view text, const std::string& buffer)
{
    const char* b = buffer.data();
    return text.data() >= b && text.data() < b + buffer.size();
}

}  // namespace

TEST_CASE("a valid event yields exactly its values", "[contract][accept]")
{
    Harness h;
    const std::string line =
        "{\"meta\":{\"contract\":\"t/shop/1.0.0\",\"consent\":[2,0,63],\"event_id\":\"ev-\\u00e9\","
        "\"event_time\":1700000000123},"
        "\"sid\":\"s-81723\",\"email\":\"ann@example.com\",\"tags\":[\"a\",\"\",\"c\\\"d\"],\"country\":\"NL\","
        "\"code\":\"zabz\",\"total\":42.5,\"items\":3,\"ok\":false,\"counts\":[1,-2,9223372036854775807],"
        "\"ratios\":[0.25,-1e-3,7],\"flags\":[true,false],\"note\":\"a\\tb\\\\c\\n\",\"words\":[]}";
    ParsedEvent e = h.accept(line);
    CHECK(e.contract == 0);
    CHECK(e.consent == ((ConsentMask{1} << 0) | (ConsentMask{1} << 2) | (ConsentMask{1} << 63)));
    CHECK(consentText(e.consent) == "[0,2,63]");
    CHECK(e.eventId == "ev-\xc3\xa9");
    CHECK(e.eventTimeMs == 1'700'000'000'123);
    REQUIRE(e.fields.size() == kFieldCount);

    CHECK(e.fields[kSid].kind == ValueKind::kString);
    CHECK(e.fields[kSid].text == "s-81723");
    CHECK(e.fields[kEmail].text == "ann@example.com");
    REQUIRE(e.fields[kTags].kind == ValueKind::kArray);
    REQUIRE(e.fields[kTags].items.size() == 3);
    CHECK(e.fields[kTags].items[0].text == "a");
    CHECK(e.fields[kTags].items[1].kind == ValueKind::kString);
    CHECK(e.fields[kTags].items[1].text.empty());
    CHECK(e.fields[kTags].items[2].text == "c\"d");
    CHECK(e.fields[kCountry].text == "NL");
    CHECK(e.fields[kCode].text == "zabz");
    CHECK(e.fields[kTotal].kind == ValueKind::kReal);
    CHECK(e.fields[kTotal].d == 42.5);
    CHECK(e.fields[kItems].kind == ValueKind::kInt);
    CHECK(e.fields[kItems].i == 3);
    CHECK(e.fields[kOk].kind == ValueKind::kBool);
    CHECK(e.fields[kOk].b == false);
    REQUIRE(e.fields[kCounts].items.size() == 3);
    CHECK(e.fields[kCounts].items[0].i == 1);
    CHECK(e.fields[kCounts].items[1].i == -2);
    CHECK(e.fields[kCounts].items[2].i == INT64_MAX);
    REQUIRE(e.fields[kRatios].items.size() == 3);
    CHECK(e.fields[kRatios].items[0].kind == ValueKind::kReal);
    CHECK(e.fields[kRatios].items[0].d == 0.25);
    CHECK(e.fields[kRatios].items[1].d == -0.001);
    CHECK(e.fields[kRatios].items[2].kind == ValueKind::kInt);  // a number field keeps integers exact
    CHECK(e.fields[kRatios].items[2].i == 7);
    REQUIRE(e.fields[kFlags].items.size() == 2);
    CHECK(e.fields[kFlags].items[0].b == true);
    CHECK(e.fields[kFlags].items[1].kind == ValueKind::kBool);
    CHECK(e.fields[kFlags].items[1].b == false);
    CHECK(e.fields[kNote].text == "a\tb\\c\n");
    CHECK(e.fields[kWords].kind == ValueKind::kArray);
    CHECK(e.fields[kWords].items.empty());
}

TEST_CASE("numbers: integers in number fields stay exact, big unsigned becomes real", "[contract][accept]")
{
    Harness h;
    auto total = [&](const std::string& text) {
        return h.accept("{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":" + text + "}").fields[kTotal];
    };
    Value v = total("42");
    CHECK(v.kind == ValueKind::kInt);
    CHECK(v.i == 42);
    v = total("-1.5e2");
    CHECK(v.kind == ValueKind::kReal);
    CHECK(v.d == -150.0);
    v = total("18446744073709551615");
    CHECK(v.kind == ValueKind::kReal);
    CHECK(v.d == 18446744073709551615.0);
    v = total("0");
    CHECK(v.kind == ValueKind::kInt);
    CHECK(v.i == 0);
}

TEST_CASE("unescaped strings: escapes, \\u sequences and surrogate pairs", "[contract][accept]")
{
    Harness h;
    ParsedEvent e = h.accept(event(",\"code\":\"ab\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e4\\ud83d\\ude00\""));
    CHECK(e.fields[kCode].text == "ab\"\\/\b\f\n\r\tA\xc3\xa4\xf0\x9f\x98\x80");
    // Raw multi-byte UTF-8 passes through unchanged.
    CHECK(h.accept(event(",\"code\":\"\xe6\x97\xa5" "ab\"")).fields[kCode].text == "\xe6\x97\xa5" "ab");
}

TEST_CASE("the event time defaults to the receive time, not to now", "[contract][accept]")
{
    Harness h;
    ParsedEvent e = h.accept(event(), 1'234'567, kNow);
    CHECK(e.eventTimeMs == 1'234'567);
    CHECK(e.eventId.empty());
    CHECK(e.consent == 0b11);
    ParsedEvent none = h.accept("{" + meta("", "[]") + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":1}");
    CHECK(none.consent == 0);
    CHECK(consentText(none.consent) == "[]");
    // Repeated levels are one bit.
    ParsedEvent rep = h.accept("{" + meta("", "[5,5,5]") + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":1}");
    CHECK(rep.consent == (ConsentMask{1} << 5));
}

TEST_CASE("field and meta order do not matter", "[contract][accept]")
{
    Harness h;
    ParsedEvent e = h.accept(
        "{\"total\":1,\"country\":\"DE\",\"sid\":\"z\",\"meta\":{\"event_time\":5,\"consent\":[1],\"event_id\":\"i\","
        "\"contract\":\"t/shop/1.0.0\"}}");
    CHECK(e.fields[kTotal].i == 1);
    CHECK(e.fields[kCountry].text == "DE");
    CHECK(e.fields[kSid].text == "z");
    CHECK(e.eventTimeMs == 5);
    CHECK(e.eventId == "i");
    CHECK(e.consent == 0b10);
}

TEST_CASE("strings are copied into the arena, not left pointing into the input", "[contract][accept]")
{
    Harness h;
    ParsedEvent first = h.accept(event(",\"code\":\"xab-first\",\"tags\":[\"t1\",\"t2\"]", ",\"event_id\":\"id-1\""));
    const std::string& buffer = h.buffer();
    CHECK_FALSE(pointsInto(first.fields[kSid].text, buffer));
    CHECK_FALSE(pointsInto(first.fields[kCode].text, buffer));
    CHECK_FALSE(pointsInto(first.fields[kTags].items[1].text, buffer));
    CHECK_FALSE(pointsInto(first.eventId, buffer));
    const size_t used = h.arena().bytes();
    CHECK(used > 0);

    // Overwrite the input and parse a different event with the same validator (which reuses
    // its parser's string buffer): the first event's values are intact.
    std::memset(h.mutableBuffer().data(), 'Z', h.mutableBuffer().size());
    ParsedEvent second = h.accept(event(",\"code\":\"yab-second\",\"tags\":[\"u1\",\"u2\"]", ",\"event_id\":\"id-2\""));
    CHECK(first.fields[kSid].text == "s-1");
    CHECK(first.fields[kCountry].text == "NL");
    CHECK(first.fields[kCode].text == "xab-first");
    CHECK(first.fields[kTags].items[0].text == "t1");
    CHECK(first.fields[kTags].items[1].text == "t2");
    CHECK(first.eventId == "id-1");
    CHECK(second.fields[kCode].text == "yab-second");
    CHECK(second.eventId == "id-2");
    CHECK(h.arena().bytes() > used);
}

TEST_CASE("what follows a line in the buffer never changes how the line is read", "[contract][accept]")
{
    // The validator is handed a line inside an NDJSON message: the next line and then zeroed
    // padding follow it in memory. Each line below must give the same outcome, whatever follows.
    Harness h;
    const std::vector<std::string> lines = {
        event(),
        event(",\"items\":12"),
        event(",\"ok\":true"),
        "{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":4",  // cut off in a number
        "{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":1,\"ok\":tru",
        "{" + meta() + ",\"sid\":\"s\",\"country\":\"N",                 // cut off in a string
        "{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\\",              // cut off after a backslash
        "{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":1,\"counts\":[1,2",
        "12",
        "tru",
        "\"abc",
        "",
        "{",
        event() + " ",
    };
    const std::vector<std::string> nexts = {
        "",
        "}",
        "2}",
        "\"}",
        "e}",
        ",\"items\":3}",
        "L\",\"total\":1}",
        "3]}",
        event(),
        std::string(200, '}'),
        std::string(100, '['),
        "\xff\xfe",
        std::string(3, '\0') + "}",
    };
    for (const std::string& line : lines) {
        Outcome base = h.run(line, "");
        std::string baseValues;
        if (base.ok) {
            for (const Value& v : base.event.fields)
                appendJson(baseValues, v);
        }
        for (const std::string& next : nexts) {
            Outcome o = h.run(line, next);
            INFO("line: " << line << "\nnext: " << next);
            REQUIRE(o.ok == base.ok);
            if (o.ok) {
                std::string values;
                for (const Value& v : o.event.fields)
                    appendJson(values, v);
                CHECK(values == baseValues);
                CHECK(o.event.eventTimeMs == base.event.eventTimeMs);
            } else {
                CHECK(reasonCode(o.why.reason) == reasonCode(base.why.reason));
                CHECK(o.why.message == base.why.message);
            }
        }
    }
    // And the base outcomes are the expected ones.
    CHECK(h.run(lines[0]).ok);
    CHECK(h.run(lines[1]).event.fields[kItems].i == 12);
    CHECK(h.run(lines[3]).why.reason == Reason::kNotJson);
    CHECK(h.run(lines[8]).why.reason == Reason::kNotObject);
}

TEST_CASE("NDJSON lines validated one after another in one buffer", "[contract][accept]")
{
    // Lines of one message, validated in place the way the pipeline walks them.
    auto set = buildSet();
    Validator v(set, Harness::defaultLimits());
    Arena arena;
    const std::string message = event(",\"items\":1") + "\n" + "{\"bad\":" + "\n" + event(",\"items\":3") + "\n";
    std::string buffer = message + std::string(Payload::kPadding, '\0');
    std::vector<int64_t> items;
    std::vector<std::string> reasons;
    size_t pos = 0;
    while (pos < message.size()) {
        size_t end = message.find('\n', pos);
        std::string_view line(buffer.data() + pos, end - pos);
        ParsedEvent e;
        Rejection why;
        if (v.validate(line, kReceivedAt, kNow, arena, e, why))
            items.push_back(e.fields[kItems].i);
        else
            reasons.emplace_back(reasonCode(why.reason));
        pos = end + 1;
    }
    CHECK(items == std::vector<int64_t>{1, 3});
    CHECK(reasons == std::vector<std::string>{"not_json"});
}

TEST_CASE("the payload padding covers what the JSON parser reads ahead", "[contract]")
{
    STATIC_REQUIRE(Payload::kPadding >= simdjson::SIMDJSON_PADDING);
}

TEST_CASE("consentText lists levels in order", "[contract]")
{
    CHECK(consentText(0) == "[]");
    CHECK(consentText(1) == "[0]");
    CHECK(consentText(0b1011) == "[0,1,3]");
    CHECK(consentText(ConsentMask{1} << 63) == "[63]");
    CHECK(consentText(~ConsentMask{0}).size() > 100);
}
