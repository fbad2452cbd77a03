// One test per rejection reason the validator produces (core/reason.h), with the variants that
// lead to each. Every message is also checked for the PII canary: messages name fields and
// limits, never values.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "fixture.h"

using namespace sluice;
using namespace sluice::contract;
using namespace sluice::contract::testing;
using Catch::Matchers::Contains;

namespace {

struct Case {
    const char* name;
    std::string line;
    Reason reason;
    const char* messagePart;  // a fragment the message must contain ("" for none)
};

void checkCases(Harness& h, const std::vector<Case>& cases)
{
    for (const Case& c : cases) {
        INFO("case: " << c.name << "\nline: " << c.line);
        Outcome o = h.run(c.line);
        REQUIRE_FALSE(o.ok);
        CHECK(reasonCode(o.why.reason) == reasonCode(c.reason));
        CHECK_THAT(o.why.message, Contains(c.messagePart));
        CHECK_THAT(o.why.message, !Contains(kCanary));
        CHECK_FALSE(o.why.message.empty());
    }
}

const std::string kCanaryString = std::string("\"") + kCanary + "\"";

}  // namespace

TEST_CASE("not_json: text that is not JSON", "[contract][reject]")
{
    Harness h;
    checkCases(h, {
                      {"empty line", "", Reason::kNotJson, "not JSON"},
                      {"blank", "   ", Reason::kNotJson, "not JSON"},
                      {"open brace only", "{", Reason::kNotJson, "not JSON"},
                      {"missing value", "{\"a\":}", Reason::kNotJson, "not JSON"},
                      {"single quotes", "{'a':1}", Reason::kNotJson, "not JSON"},
                      {"bare word", "hello", Reason::kNotJson, "not JSON"},
                      {"trailing garbage", event() + "x", Reason::kNotJson, "not JSON"},
                      {"two objects", event() + event(), Reason::kNotJson, "not JSON"},
                      {"unterminated string", "{\"meta\":{\"contract\":" + kCanaryString.substr(0, 8), Reason::kNotJson,
                       "not JSON"},
                      {"trailing comma", "{" + meta() + ",\"sid\":" + kCanaryString + ",}", Reason::kNotJson,
                       "not JSON"},
                      {"NaN literal", "{" + meta() + ",\"total\":NaN}", Reason::kNotJson, "not JSON"},
                      {"leading zero", "{" + meta() + ",\"total\":01}", Reason::kNotJson, "not JSON"},
                      {"bare dot", "{" + meta() + ",\"total\":1.}", Reason::kNotJson, "not JSON"},
                      {"bare exponent", "{" + meta() + ",\"total\":1e}", Reason::kNotJson, "not JSON"},
                      {"bare minus", "{" + meta() + ",\"total\":-}", Reason::kNotJson, "not JSON"},
                      {"huge number and a trailing comma", "{" + meta() + ",\"total\":18446744073709551616,}",
                       Reason::kNotJson, "not JSON"},
                  });
}

TEST_CASE("not_object: JSON that is not an object names the type it got", "[contract][reject]")
{
    Harness h;
    checkCases(h, {
                      {"array", "[" + kCanaryString + "]", Reason::kNotObject, "got array"},
                      {"string", kCanaryString, Reason::kNotObject, "got string"},
                      {"integer", "12", Reason::kNotObject, "got integer"},
                      {"number", "1.5", Reason::kNotObject, "got number"},
                      {"boolean", "true", Reason::kNotObject, "got boolean"},
                      {"null", "null", Reason::kNotObject, "got null"},
                  });
}

TEST_CASE("bad_utf8: invalid UTF-8 anywhere in the event", "[contract][reject]")
{
    Harness h;
    checkCases(h, {
                      {"invalid byte in a value", event(",\"code\":\"ab\xff\""), Reason::kBadUtf8, "UTF-8"},
                      {"overlong encoding", event(",\"code\":\"ab\xc0\xaf\""), Reason::kBadUtf8, "UTF-8"},
                      {"UTF-16 surrogate encoded", event(",\"code\":\"ab\xed\xa0\x80\""), Reason::kBadUtf8, "UTF-8"},
                      {"truncated sequence", event(",\"code\":\"ab\xe2\x82\""), Reason::kBadUtf8, "UTF-8"},
                      {"invalid byte in a key", event(",\"co\xfe\":1"), Reason::kBadUtf8, "UTF-8"},
                      {"beyond U+10FFFF", event(",\"code\":\"\xf4\x90\x80\x80\""), Reason::kBadUtf8, "UTF-8"},
                  });
}

TEST_CASE("too_large: an event over the size limit, and a string over its max_length", "[contract][reject]")
{
    Limits limits = Harness::defaultLimits();
    limits.maxEventBytes = 256;
    Harness h(limits);

    // Exactly at the limit is accepted; one byte more is refused before parsing.
    std::string atLimit = event(",\"code\":\"ab\"");
    atLimit.insert(atLimit.size() - 1, std::string(limits.maxEventBytes - atLimit.size(), ' '));
    REQUIRE(atLimit.size() == limits.maxEventBytes);
    h.accept(atLimit);
    std::string over = atLimit;
    over.insert(over.size() - 1, " ");
    Rejection r = h.reject(over);
    CHECK(r.reason == Reason::kTooLarge);
    CHECK(r.message == "event is 257 bytes; the limit is 256");

    Harness big;
    // note: max_length 8 bytes; 8 accepted, 9 refused (bytes, not characters).
    CHECK(big.accept(event(",\"note\":\"12345678\"")).fields[kNote].text == "12345678");
    checkCases(big, {
                        {"string over max_length", event(",\"note\":\"CANARY-9f7c1e\""), Reason::kTooLarge,
                         "field 'note' is longer than 8 bytes"},
                        {"multi-byte string over max_length", event(",\"note\":\"\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\""),
                         Reason::kTooLarge, "longer than 8 bytes"},
                        {"array element over max_length", event(",\"words\":[\"abc\",\"abcde\"]"), Reason::kTooLarge,
                         "element 1 of field 'words' is longer than 4 bytes"},
                    });
}

TEST_CASE("too_deep: nesting beyond the depth limit", "[contract][reject]")
{
    Limits limits = Harness::defaultLimits();
    limits.maxDepth = 8;
    Harness h(limits);
    auto nested = [](int levels) {
        return std::string(static_cast<size_t>(levels), '[') + std::string(static_cast<size_t>(levels), ']');
    };
    auto nestedObject = [](int levels) {
        std::string s;
        for (int i = 0; i < levels; ++i)
            s += "{\"a\":";
        return s + "1" + std::string(static_cast<size_t>(levels), '}');
    };
    // The root object is one level; meta is a second. A value nested deeper than the limit is
    // refused as too deep, whatever the contract says about the field.
    checkCases(h, {
                      {"deep array value", event(",\"counts\":" + nested(20)), Reason::kTooDeep, "deeper than 8 levels"},
                      {"deep object value", event(",\"x\":" + nestedObject(20)), Reason::kTooDeep,
                       "deeper than 8 levels"},
                      {"deep root", nested(100), Reason::kTooDeep, "deeper than 8 levels"},
                  });
    // Within the limit the parse succeeds and the contract decides (an array of arrays is the
    // wrong type for `counts`).
    Rejection r = h.reject(event(",\"counts\":" + nested(2)));
    CHECK(r.reason == Reason::kWrongType);
}

TEST_CASE("too_deep: maxDepth levels are accepted, one more is not", "[contract][reject]")
{
    // Levels count the root object as one: {"counts":[[[1]]]} is four levels deep.
    Limits limits = Harness::defaultLimits();
    limits.maxDepth = 4;
    Harness h(limits);
    auto withCounts = [](int levels) {
        return event(",\"counts\":" + std::string(static_cast<size_t>(levels), '[') + "1" +
                     std::string(static_cast<size_t>(levels), ']'));
    };
    CHECK(h.reject(withCounts(2)).reason == Reason::kWrongType);  // 3 levels
    CHECK(h.reject(withCounts(3)).reason == Reason::kWrongType);  // 4 levels: at the limit, parsed
    Rejection r = h.reject(withCounts(4));                        // 5 levels
    CHECK(r.reason == Reason::kTooDeep);
    CHECK(r.message == "nesting is deeper than 4 levels");

    // Every event is at least three levels deep (root, meta, meta.consent), so 3 is the
    // smallest useful limit (the configuration's minimum for ingest.max_depth): it admits every
    // event whose fields are scalars or flat arrays.
    Limits three = Harness::defaultLimits();
    three.maxDepth = 3;
    Harness flat(three);
    CHECK(flat.accept(event(",\"counts\":[1]")).fields[kCounts].items[0].i == 1);
    CHECK(flat.reject(event(",\"counts\":[[1]]")).reason == Reason::kWrongType);
    CHECK(flat.reject(event(",\"counts\":[[[1]]]")).reason == Reason::kTooDeep);
}

TEST_CASE("unknown_contract: meta.contract names no loaded contract", "[contract][reject]")
{
    Harness h;
    Rejection r = h.reject("{\"meta\":{\"contract\":\"t/shop/9.9.9\",\"consent\":[]},\"sid\":" + kCanaryString + "}");
    CHECK(r.reason == Reason::kUnknownContract);
    CHECK(r.message == "unknown contract 't/shop/9.9.9'");
    CHECK(r.contract == -1);

    // A contract ref is matched exactly: no prefix, case or whitespace leniency.
    for (const char* ref : {"t/shop/1.0", "T/shop/1.0.0", "t/shop/1.0.0 ", ""}) {
        Rejection x = h.reject(std::string("{\"meta\":{\"contract\":\"") + ref + "\",\"consent\":[]},\"sid\":\"s\"}");
        CHECK(x.reason == Reason::kUnknownContract);
    }
}

TEST_CASE("bad_meta: missing or malformed meta", "[contract][reject]")
{
    Harness h;
    const std::string body = ",\"sid\":" + kCanaryString + ",\"country\":\"NL\",\"total\":1";
    const std::string c = std::string("\"contract\":\"") + kRef + "\"";
    checkCases(
        h,
        {
            {"meta missing", "{\"sid\":" + kCanaryString + ",\"country\":\"NL\",\"total\":1}", Reason::kBadMeta,
             "meta is missing"},
            {"meta is an array", "{\"meta\":[]" + body + "}", Reason::kBadMeta, "meta must be an object, got array"},
            {"meta is a string", "{\"meta\":" + kCanaryString + body + "}", Reason::kBadMeta,
             "meta must be an object, got string"},
            {"meta is null", "{\"meta\":null" + body + "}", Reason::kBadMeta, "meta must be an object, got null"},
            {"contract missing", "{\"meta\":{\"consent\":[]}" + body + "}", Reason::kBadMeta,
             "meta.contract is missing"},
            {"contract not a string", "{\"meta\":{\"contract\":1,\"consent\":[]}" + body + "}", Reason::kBadMeta,
             "meta.contract must be a string"},
            {"contract null", "{\"meta\":{\"contract\":null,\"consent\":[]}" + body + "}", Reason::kBadMeta,
             "meta.contract must be a string"},
            {"unknown meta key", "{\"meta\":{" + c + ",\"consent\":[],\"colour\":" + kCanaryString + "}" + body + "}",
             Reason::kBadMeta, "unknown meta field 'colour'"},
            {"producer sets key_link", "{\"meta\":{" + c + ",\"consent\":[],\"key_link\":" + kCanaryString + "}" + body +
                                           "}",
             Reason::kBadMeta, "meta.key_link is set by sluice"},
            {"producer sets received_at", "{\"meta\":{" + c + ",\"consent\":[],\"received_at\":1}" + body + "}",
             Reason::kBadMeta, "meta.received_at is set by sluice"},
            {"event_id not a string", "{\"meta\":{" + c + ",\"consent\":[],\"event_id\":17}" + body + "}",
             Reason::kBadMeta, "meta.event_id must be a string of at most 256 bytes"},
            {"event_id null", "{\"meta\":{" + c + ",\"consent\":[],\"event_id\":null}" + body + "}", Reason::kBadMeta,
             "meta.event_id"},
            {"event_id too long", "{\"meta\":{" + c + ",\"consent\":[],\"event_id\":\"" + std::string(257, 'e') + "\"}" +
                                      body + "}",
             Reason::kBadMeta, "at most 256 bytes"},
            {"event_time a real", "{\"meta\":{" + c + ",\"consent\":[],\"event_time\":1700000000000.5}" + body + "}",
             Reason::kBadMeta, "meta.event_time must be an integer"},
            {"event_time a string", "{\"meta\":{" + c + ",\"consent\":[],\"event_time\":\"1700000000000\"}" + body + "}",
             Reason::kBadMeta, "meta.event_time must be an integer"},
            {"event_time null", "{\"meta\":{" + c + ",\"consent\":[],\"event_time\":null}" + body + "}", Reason::kBadMeta,
             "meta.event_time must be an integer"},
        });

    // An event id of exactly 256 bytes is fine.
    ParsedEvent e = h.accept(event("", ",\"event_id\":\"" + std::string(256, 'e') + "\""));
    CHECK(e.eventId == std::string(256, 'e'));
}

TEST_CASE("missing_field: a required field absent or null", "[contract][reject]")
{
    Harness h;
    checkCases(h, {
                      {"sid absent", "{" + meta() + ",\"country\":\"NL\",\"total\":1,\"email\":\"x@" + kCanary + "\"}",
                       Reason::kMissingField, "required field 'sid' is missing"},
                      {"country absent", "{" + meta() + ",\"sid\":" + kCanaryString + ",\"total\":1}",
                       Reason::kMissingField, "required field 'country' is missing"},
                      {"total null", "{" + meta() + ",\"sid\":" + kCanaryString + ",\"country\":\"NL\",\"total\":null}",
                       Reason::kMissingField, "required field 'total' is missing"},
                      {"sid null", "{" + meta() + ",\"sid\":null,\"country\":\"NL\",\"total\":1}", Reason::kMissingField,
                       "required field 'sid' is missing"},
                      {"only meta", "{" + meta() + "}", Reason::kMissingField, "is missing"},
                  });
    // Optional fields may be absent or null: both read as missing.
    ParsedEvent e = h.accept(event(",\"items\":null"));
    CHECK(e.fields[kItems].kind == ValueKind::kMissing);
    CHECK(e.fields[kOk].kind == ValueKind::kMissing);
}

TEST_CASE("wrong_type: each type, arrays, integer range, 3.0 as integer", "[contract][reject]")
{
    Harness h;
    checkCases(
        h,
        {
            {"string gets number", event(",\"code\":12"), Reason::kWrongType, "field 'code' must be string, got integer"},
            {"string gets boolean", event(",\"code\":true"), Reason::kWrongType, "must be string, got boolean"},
            {"string gets object", event(",\"code\":{\"v\":" + kCanaryString + "}"), Reason::kWrongType,
             "must be string, got object"},
            {"string gets array", event(",\"code\":[" + kCanaryString + "]"), Reason::kWrongType,
             "must be string, got array"},
            {"number gets string", "{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":" + kCanaryString + "}",
             Reason::kWrongType, "field 'total' must be number, got string"},
            {"number gets boolean", "{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":false}",
             Reason::kWrongType, "must be number, got boolean"},
            {"integer gets real", event(",\"items\":1.5"), Reason::kWrongType, "field 'items' must be integer, got number"},
            {"integer gets string", event(",\"items\":\"3\""), Reason::kWrongType, "must be integer, got string"},
            {"integer gets boolean", event(",\"items\":true"), Reason::kWrongType, "must be integer, got boolean"},
            {"integer above int64", event(",\"items\":9223372036854775808"), Reason::kWrongType,
             "field 'items' is out of the 64-bit integer range"},
            {"integer real beyond int64", event(",\"items\":1e300"), Reason::kWrongType,
             "field 'items' is out of the 64-bit integer range"},
            {"integer real just beyond 2^53", event(",\"items\":18014398509481984.0"), Reason::kWrongType,
             "must be integer"},
            {"boolean gets integer", event(",\"ok\":1"), Reason::kWrongType, "field 'ok' must be boolean, got integer"},
            {"boolean gets string", event(",\"ok\":\"true\""), Reason::kWrongType, "must be boolean, got string"},
            {"array of integer gets scalar", event(",\"counts\":5"), Reason::kWrongType,
             "field 'counts' must be an array of integer, got integer"},
            {"array of integer gets object", event(",\"counts\":{}"), Reason::kWrongType, "got object"},
            {"array of integer with a string", event(",\"counts\":[1," + kCanaryString + "]"), Reason::kWrongType,
             "element 1 of field 'counts' must be integer, got string"},
            {"array of integer with a real", event(",\"counts\":[1,2,2.5]"), Reason::kWrongType,
             "element 2 of field 'counts' must be integer, got number"},
            {"array of integer with null", event(",\"counts\":[null]"), Reason::kWrongType,
             "element 0 of field 'counts' must be integer, got null"},
            {"array of arrays", event(",\"counts\":[[1]]"), Reason::kWrongType, "got array"},
            {"array of number with a boolean", event(",\"ratios\":[0.5,true]"), Reason::kWrongType,
             "element 1 of field 'ratios' must be number, got boolean"},
            {"array of boolean with an integer", event(",\"flags\":[true,0]"), Reason::kWrongType,
             "element 1 of field 'flags' must be boolean, got integer"},
            {"array of string with a number", event(",\"words\":[\"ab\",3]"), Reason::kWrongType,
             "element 1 of field 'words' must be string, got integer"},
        });

    // Integral reals count as integers, within the exactly representable range.
    CHECK(h.accept(event(",\"items\":3.0")).fields[kItems].i == 3);
    CHECK(h.accept(event(",\"items\":3.0")).fields[kItems].kind == ValueKind::kInt);
    CHECK(h.accept(event(",\"items\":-7.0")).fields[kItems].i == -7);
    CHECK(h.accept(event(",\"items\":1e2")).fields[kItems].i == 100);
    CHECK(h.accept(event(",\"items\":-0.0")).fields[kItems].i == 0);
    CHECK(h.accept(event(",\"items\":9007199254740992.0")).fields[kItems].i == 9007199254740992LL);
    CHECK(h.accept(event(",\"items\":-9007199254740992.0")).fields[kItems].i == -9007199254740992LL);
    CHECK(h.accept(event(",\"counts\":[1.0,2]")).fields[kCounts].items[0].i == 1);
    // The int64 extremes as integers.
    CHECK(h.accept(event(",\"items\":9223372036854775807")).fields[kItems].i == INT64_MAX);
    CHECK(h.accept(event(",\"items\":-9223372036854775808")).fields[kItems].i == INT64_MIN);
}

// Issue 11: simdjson refuses a whole document over one number beyond 64 bits; such an event gets
// the reason of the field the number is in, like any other value of the wrong type.
TEST_CASE("numbers beyond 64 bits get the reason of their field, not not_json", "[contract][reject]")
{
    Harness h;
    const std::string body = ",\"sid\":" + kCanaryString + ",\"country\":\"NL\",\"total\":1}";
    const std::string c = std::string("{\"meta\":{\"contract\":\"") + kRef + "\"";
    checkCases(
        h,
        {
            {"integer 2^64", event(",\"items\":18446744073709551616"), Reason::kWrongType,
             "field 'items' is out of the 64-bit integer range"},
            {"integer below int64", event(",\"items\":-9223372036854775809"), Reason::kWrongType,
             "field 'items' is out of the 64-bit integer range"},
            {"integer of 40 digits", event(",\"items\":1234567890123456789012345678901234567890"), Reason::kWrongType,
             "field 'items' is out of the 64-bit integer range"},
            {"integer of 400 digits", event(",\"items\":" + std::string(400, '7')), Reason::kWrongType,
             "field 'items' is out of the 64-bit integer range"},
            {"integer field 1e400", event(",\"items\":1e400"), Reason::kWrongType,
             "field 'items' is out of the 64-bit integer range"},
            {"number 1e400", "{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":1e400}", Reason::kWrongType,
             "field 'total' is out of the range of a 64-bit floating-point number"},
            {"number -1e400", "{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":-1e400}",
             Reason::kWrongType, "field 'total' is out of the range of a 64-bit floating-point number"},
            {"number 1E+999 before meta", "{\"total\":1E+999," + meta() + ",\"sid\":\"s\",\"country\":\"NL\"}",
             Reason::kWrongType, "field 'total' is out of the range of a 64-bit floating-point number"},
            {"array of number with 1e400", event(",\"ratios\":[0.5,1e400]"), Reason::kWrongType,
             "field 'ratios' is out of the range of a 64-bit floating-point number"},
            {"array of integer with 2^64", event(",\"counts\":[1,18446744073709551616]"), Reason::kWrongType,
             "element 1 of field 'counts' is out of the 64-bit integer range"},
            {"string field with 2^64", event(",\"code\":18446744073709551616"), Reason::kWrongType,
             "field 'code' must be string, got number"},
            {"PII field with 2^64", event(",\"email\":18446744073709551616"), Reason::kPiiNotString,
             "PII field 'email' must be a string"},
            {"PII field with 1e400", event(",\"email\":1e400"), Reason::kPiiNotString,
             "PII field 'email' must be a string"},
            {"boolean field with 1e400", event(",\"ok\":1e400"), Reason::kWrongType, "field 'ok' must be boolean"},
            {"consent 2^64", c + ",\"consent\":[0,18446744073709551616]}" + body, Reason::kBadConsent,
             "integers from 0 to 63"},
            {"consent below int64", c + ",\"consent\":[-9223372036854775809]}" + body, Reason::kBadConsent,
             "integers from 0 to 63"},
            {"consent 1e400", c + ",\"consent\":[1e400]}" + body, Reason::kBadConsent, "integers from 0 to 63"},
            {"event_time 2^64", c + ",\"consent\":[],\"event_time\":18446744073709551616}" + body,
             Reason::kTimestampOutOfRange, "meta.event_time is out of range"},
            {"event_time 2^64 - 1", c + ",\"consent\":[],\"event_time\":18446744073709551615}" + body,
             Reason::kTimestampOutOfRange, "meta.event_time is out of range"},
            {"event_time below int64", c + ",\"consent\":[],\"event_time\":-9223372036854775809}" + body,
             Reason::kTimestampOutOfRange, "meta.event_time is negative"},
            {"event_time 1e400", c + ",\"consent\":[],\"event_time\":1e400}" + body, Reason::kTimestampOutOfRange,
             "meta.event_time is out of range"},
            {"event_time -1e400", c + ",\"consent\":[],\"event_time\":-1e400}" + body,
             Reason::kTimestampOutOfRange, "meta.event_time is out of range"},
            // Another problem found first in the usual order keeps its reason.
            {"unknown field with 2^64", event(",\"colour\":18446744073709551616"), Reason::kUnknownField,
             "field 'colour' is not in contract"},
            {"unknown contract", "{\"meta\":{\"contract\":\"x/y/1.0.0\",\"consent\":[1e400]}}",
             Reason::kUnknownContract, "unknown contract"},
            {"missing field", "{" + meta() + ",\"sid\":\"s\",\"total\":18446744073709551616}", Reason::kMissingField,
             "required field 'country' is missing"},
        });

    // The dead letter learns what it can, as for any refused event.
    Rejection r = h.reject(event(",\"items\":18446744073709551616", ",\"event_id\":\"big-1\""));
    CHECK(r.contract == 0);
    CHECK(r.eventId == "big-1");

    // Strings that look like big numbers, and keys, are not numbers; a number field takes an
    // integer beyond 64 bits as a double, and a number that underflows is 0.
    CHECK(h.accept(event(",\"code\":\"ab18446744073709551616\"")).fields[kCode].kind == ValueKind::kString);
    CHECK(h.accept("{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":18446744073709551616}")
              .fields[kTotal]
              .d == 18446744073709551616.0);
    CHECK(h.accept("{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":-1e-400}").fields[kTotal].d == 0.0);
    CHECK(h.accept(event(",\"ratios\":[123456789012345678901234567890]")).fields[kRatios].items[0].d ==
          123456789012345678901234567890.0);
}

TEST_CASE("pattern_mismatch: anchors, end-only $, unanchored search", "[contract][reject]")
{
    Harness h;
    checkCases(h, {
                      {"country lowercase", "{" + meta() + ",\"sid\":\"s\",\"country\":\"nl\",\"total\":1}",
                       Reason::kPatternMismatch, "field 'country' does not match pattern ^[A-Z]{2}$"},
                      {"country too long", "{" + meta() + ",\"sid\":\"s\",\"country\":\"NLD\",\"total\":1}",
                       Reason::kPatternMismatch, "field 'country'"},
                      {"$ before a trailing newline", "{" + meta() + ",\"sid\":\"s\",\"country\":\"NL\\n\",\"total\":1}",
                       Reason::kPatternMismatch, "field 'country'"},
                      {"^ after a leading newline", "{" + meta() + ",\"sid\":\"s\",\"country\":\"\\nNL\",\"total\":1}",
                       Reason::kPatternMismatch, "field 'country'"},
                      {"email without @", event(",\"email\":" + kCanaryString), Reason::kPatternMismatch,
                       "field 'email' does not match"},
                      {"email with two @", event(",\"email\":\"a@b@" + std::string(kCanary) + "\""),
                       Reason::kPatternMismatch, "field 'email'"},
                      {"unanchored pattern, no occurrence", event(",\"code\":\"xaxbx\""), Reason::kPatternMismatch,
                       "field 'code' does not match pattern ab"},
                      {"array element", event(",\"words\":[\"abc\",\"AB\"]"), Reason::kPatternMismatch,
                       "element 1 of field 'words' does not match"},
                  });
    // An unanchored pattern is a search: it matches anywhere in the string.
    CHECK(h.accept(event(",\"code\":\"xxabyy\"")).fields[kCode].text == "xxabyy");
    CHECK(h.accept(event(",\"code\":\"ab\"")).fields[kCode].text == "ab");
    CHECK(h.accept(event(",\"email\":\"ann@example.com\"")).fields[kEmail].text == "ann@example.com");
}

TEST_CASE("unknown_field: a field the contract does not declare", "[contract][reject]")
{
    Harness h;
    checkCases(h, {
                      {"unknown field", event(",\"colour\":" + kCanaryString), Reason::kUnknownField,
                       "field 'colour' is not in contract t/shop/1.0.0"},
                      {"unknown null field", event(",\"colour\":null"), Reason::kUnknownField, "field 'colour'"},
                      {"case differs", event(",\"Country\":\"NL\""), Reason::kUnknownField, "field 'Country'"},
                      {"a field of another contract", event(",\"n\":1"), Reason::kUnknownField, "field 'n'"},
                  });

    // Names from the input are quoted shortened and printable.
    Rejection r = h.reject(event(",\"" + std::string(100, 'x') + "\":1"));
    CHECK(r.reason == Reason::kUnknownField);
    CHECK_THAT(r.message, Contains("'" + std::string(64, 'x') + "...'"));
    CHECK_THAT(r.message, !Contains(std::string(65, 'x')));
    Rejection ctl = h.reject(event(",\"a\\u0001b\\nc'd\":1"));
    CHECK_THAT(ctl.message, Contains("'a?b?c?d'"));
}

TEST_CASE("pii_not_string: a PII field holding a non-string", "[contract][reject]")
{
    Harness h;
    checkCases(h, {
                      {"PII scalar number", "{" + meta() + ",\"sid\":17,\"country\":\"NL\",\"total\":1}",
                       Reason::kPiiNotString, "PII field 'sid' must be a string, got integer"},
                      {"PII scalar object", event(",\"email\":{\"v\":" + kCanaryString + "}"), Reason::kPiiNotString,
                       "PII field 'email' must be a string, got object"},
                      {"PII scalar array", event(",\"email\":[" + kCanaryString + "]"), Reason::kPiiNotString,
                       "PII field 'email' must be a string, got array"},
                      {"PII array gets a scalar", event(",\"tags\":" + kCanaryString), Reason::kPiiNotString,
                       "PII field 'tags' must be an array of strings"},
                      {"PII array element number", event(",\"tags\":[" + kCanaryString + ",5]"), Reason::kPiiNotString,
                       "element 1 of PII field 'tags' must be a string, got integer"},
                      {"PII array element null", event(",\"tags\":[null]"), Reason::kPiiNotString,
                       "element 0 of PII field 'tags'"},
                  });
}

TEST_CASE("bad_consent: missing, not an array, or levels outside 0..63", "[contract][reject]")
{
    Harness h;
    const std::string body = ",\"sid\":" + kCanaryString + ",\"country\":\"NL\",\"total\":1}";
    const std::string c = std::string("{\"meta\":{\"contract\":\"") + kRef + "\"";
    checkCases(h, {
                      {"missing", c + "}" + body, Reason::kBadConsent, "meta.consent is missing"},
                      {"not an array", c + ",\"consent\":1}" + body, Reason::kBadConsent, "must be an array"},
                      {"object", c + ",\"consent\":{}}" + body, Reason::kBadConsent, "must be an array"},
                      {"null", c + ",\"consent\":null}" + body, Reason::kBadConsent, "must be an array"},
                      {"string", c + ",\"consent\":\"0,1\"}" + body, Reason::kBadConsent, "must be an array"},
                      {"negative", c + ",\"consent\":[0,-1]}" + body, Reason::kBadConsent, "integers from 0 to 63"},
                      {"above 63", c + ",\"consent\":[64]}" + body, Reason::kBadConsent, "integers from 0 to 63"},
                      {"huge", c + ",\"consent\":[18446744073709551615]}" + body, Reason::kBadConsent, "0 to 63"},
                      {"real", c + ",\"consent\":[1.5]}" + body, Reason::kBadConsent, "integers"},
                      {"integral real", c + ",\"consent\":[1.0]}" + body, Reason::kBadConsent, "integers"},
                      {"string level", c + ",\"consent\":[\"1\"]}" + body, Reason::kBadConsent, "integers"},
                      {"nested", c + ",\"consent\":[[1]]}" + body, Reason::kBadConsent, "integers"},
                      {"boolean", c + ",\"consent\":[true]}" + body, Reason::kBadConsent, "integers"},
                  });
}

TEST_CASE("timestamp_out_of_range: negative, or too far ahead of an explicit now", "[contract][reject]")
{
    Harness h;
    auto withTime = [](int64_t t) { return event("", ",\"event_time\":" + std::to_string(t)); };
    Rejection neg = h.reject(withTime(-1));
    CHECK(neg.reason == Reason::kTimestampOutOfRange);
    CHECK(neg.message == "meta.event_time is negative");

    // The bound is nowMs + maxFutureMs, from the `now` argument (not the receive time).
    const int64_t now = 1'800'000'000'000;
    CHECK(h.accept(withTime(now + kMaxFuture), kReceivedAt, now).eventTimeMs == now + kMaxFuture);
    Rejection ahead = h.reject(withTime(now + kMaxFuture + 1), now);
    CHECK(ahead.reason == Reason::kTimestampOutOfRange);
    CHECK(ahead.message == "meta.event_time is more than 60 s ahead of the host clock");
    // Same event time, a later clock: accepted.
    CHECK(h.accept(withTime(now + kMaxFuture + 1), kReceivedAt, now + 1).eventTimeMs == now + kMaxFuture + 1);
    // Far in the past is fine (late data), and so is the epoch itself.
    CHECK(h.accept(withTime(0)).eventTimeMs == 0);
    CHECK(h.accept(withTime(1)).eventTimeMs == 1);
    Rejection far = h.reject(withTime(INT64_MAX));
    CHECK(far.reason == Reason::kTimestampOutOfRange);
}

TEST_CASE("duplicate_field: the same key twice, at the top level and in meta", "[contract][reject]")
{
    Harness h;
    const std::string c = std::string("\"contract\":\"") + kRef + "\"";
    checkCases(
        h,
        {
            {"top-level field twice", event(",\"sid\":" + kCanaryString), Reason::kDuplicateField,
             "field 'sid' appears twice"},
            {"optional field twice", event(",\"items\":1,\"items\":1"), Reason::kDuplicateField,
             "field 'items' appears twice"},
            {"null twice", event(",\"items\":null,\"items\":null"), Reason::kDuplicateField, "field 'items' appears twice"},
            {"meta twice", "{" + meta() + "," + meta() + ",\"sid\":\"s\",\"country\":\"NL\",\"total\":1}",
             Reason::kDuplicateField, "field 'meta' appears twice"},
            {"meta.contract twice", "{\"meta\":{" + c + "," + c + ",\"consent\":[]},\"sid\":\"s\"}",
             Reason::kDuplicateField, "meta.contract appears twice"},
            {"meta.consent twice", "{\"meta\":{" + c + ",\"consent\":[],\"consent\":[1]},\"sid\":\"s\"}",
             Reason::kDuplicateField, "meta.consent appears twice"},
            {"meta.event_id twice", "{\"meta\":{" + c + ",\"consent\":[],\"event_id\":\"a\",\"event_id\":\"b\"}}",
             Reason::kDuplicateField, "meta.event_id appears twice"},
            {"meta.event_time twice", "{\"meta\":{" + c + ",\"consent\":[],\"event_time\":1,\"event_time\":2}}",
             Reason::kDuplicateField, "meta.event_time appears twice"},
        });
}

TEST_CASE("a rejection records the contract and event id once they are known", "[contract][reject]")
{
    Harness h;
    Rejection r = h.reject(event(",\"colour\":1", ",\"event_id\":\"ev-42\""));
    CHECK(r.reason == Reason::kUnknownField);
    CHECK(r.contract == 0);
    CHECK(r.eventId == "ev-42");

    // The second contract of the set is found too, and its fields apply.
    Rejection o = h.reject(std::string("{\"meta\":{\"contract\":\"") + kOtherRef +
                           "\",\"consent\":[],\"event_id\":\"ev-7\"},\"k\":\"x\",\"n\":\"not a number\"}");
    CHECK(o.reason == Reason::kWrongType);
    CHECK(o.contract == 1);
    CHECK(o.eventId == "ev-7");

    // Reset between events: a later rejection before meta is read carries neither.
    Rejection n = h.reject("[]");
    CHECK(n.contract == -1);
    CHECK(n.eventId.empty());
}

TEST_CASE("no rejection message contains a field value", "[contract][reject][privacy]")
{
    // Each line carries the canary as a value at the place that makes it fail.
    Harness h;
    const std::string v = kCanaryString;
    const std::vector<std::string> lines = {
        "{\"meta\":{\"contract\":\"" + std::string(kRef) + "\",\"consent\":" + v + "},\"sid\":" + v + "}",
        "{\"meta\":{\"contract\":\"" + std::string(kRef) + "\",\"consent\":[" + v + "]},\"sid\":" + v + "}",
        "{\"meta\":{\"contract\":\"" + std::string(kRef) + "\",\"consent\":[],\"event_time\":" + v + "}}",
        "{\"meta\":{\"contract\":\"" + std::string(kRef) + "\",\"consent\":[],\"event_id\":[" + v + "]}}",
        "{\"meta\":" + v + "}",
        "{\"meta\":{\"contract\":\"" + std::string(kRef) + "\",\"consent\":[],\"x\":" + v + "}}",
        event(",\"email\":" + v),
        event(",\"code\":\"" + std::string(kCanary) + "\\n\""),
        event(",\"items\":" + v),
        event(",\"ok\":" + v),
        event(",\"counts\":[" + v + "]"),
        event(",\"ratios\":" + v),
        event(",\"tags\":[1," + v + "]"),
        event(",\"note\":" + v),
        event(",\"words\":[" + v + "]"),
        event(",\"unknown\":" + v),
        event(",\"sid\":" + v),
        "{" + meta() + ",\"sid\":" + v + ",\"country\":" + v + ",\"total\":1}",
        "{" + meta() + ",\"sid\":" + v + ",\"country\":\"NL\",\"total\":" + v + "}",
        "{" + meta() + ",\"sid\":" + v + ",\"country\":\"NL\"}",
        "[" + v + "]",
        v,
        "{\"a\":" + v,
        event(",\"code\":\"" + std::string(kCanary) + "\xff\""),
    };
    for (const std::string& line : lines) {
        Outcome o = h.run(line);
        INFO("line: " << line << "\nmessage: " << o.why.message);
        REQUIRE_FALSE(o.ok);
        CHECK_THAT(o.why.message, !Contains(kCanary));
        CHECK_THAT(o.why.message, !Contains("9f7c1e"));
    }
}

TEST_CASE("every validator reason has a test above", "[contract][reject]")
{
    // The reasons that arise only outside the validator (an acknowledged envelope, a duplicate
    // request) are not validator outcomes; every other reason code is one.
    std::vector<Reason> validatorReasons;
    for (size_t i = 0; i < kReasonCount; ++i) {
        Reason r = static_cast<Reason>(i);
        if (r != Reason::kBadRequest && r != Reason::kDuplicate)
            validatorReasons.push_back(r);
    }
    CHECK(validatorReasons.size() == 15);
    CHECK(reasonCode(Reason::kTimestampOutOfRange) == "timestamp_out_of_range");
    CHECK(reasonFromCode("pii_not_string") == Reason::kPiiNotString);
    CHECK_FALSE(reasonFromCode("nope").has_value());
}

// Issue 11: a dead letter's contract and event id are filled whenever they can be read, also
// when meta holds an unknown or repeated key (meta is read whole before that refuses the event).
TEST_CASE("the contract and event id of a refused event are kept whenever readable", "[contract][reject]")
{
    Harness h;
    const std::string body = ",\"sid\":\"s\",\"country\":\"NL\",\"total\":1}";
    const std::string c = std::string("\"contract\":\"") + kRef + "\"";
    Rejection unknownKey = h.reject("{\"meta\":{\"colour\":1," + c + ",\"consent\":[],\"event_id\":\"x-1\"}" + body);
    CHECK(unknownKey.reason == Reason::kBadMeta);
    CHECK(unknownKey.message == "unknown meta field 'colour'");
    CHECK(unknownKey.contract == 0);
    CHECK(unknownKey.eventId == "x-1");
    Rejection twice = h.reject("{\"meta\":{\"event_id\":\"x-2\",\"consent\":[],\"consent\":[1]," + c + "}" + body);
    CHECK(twice.reason == Reason::kDuplicateField);
    CHECK(twice.message == "meta.consent appears twice");
    CHECK(twice.contract == 0);
    CHECK(twice.eventId == "x-2");
    Rejection setBySluice = h.reject("{\"meta\":{" + c + ",\"key_link\":\"k\",\"consent\":[],\"event_id\":\"x-3\"}" + body);
    CHECK(setBySluice.message == "meta.key_link is set by sluice, not by producers");
    CHECK(setBySluice.eventId == "x-3");
    // An unknown contract is no contract; a bad event id is no event id.
    Rejection unknownRef = h.reject("{\"meta\":{\"contract\":\"a/b/1.0.0\",\"consent\":[],\"event_id\":\"x-4\"}" + body);
    CHECK(unknownRef.reason == Reason::kUnknownContract);
    CHECK(unknownRef.contract == -1);
    CHECK(unknownRef.eventId == "x-4");
    Rejection later = h.reject("{\"meta\":{" + c + ",\"consent\":[],\"event_id\":\"x-5\"},\"sid\":\"s\",\"country\":\"NL\",\"total\":\"x\"}");
    CHECK(later.reason == Reason::kWrongType);
    CHECK(later.contract == 0);
    CHECK(later.eventId == "x-5");
}
