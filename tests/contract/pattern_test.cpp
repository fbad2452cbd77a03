// Pattern: PCRE2 with JSON Schema's semantics (unanchored search, `$` only at the very end,
// UTF-8 code points, ECMAScript \u escapes), compile errors with their offset, a bounded match.
// ContractSet::build: patterns compiled once, errors naming the file and the field.
#include <catch2/catch.hpp>

#include <string>

#include "contract/pattern.h"
#include "contract/validator.h"
#include "fixture.h"

using namespace sluice;
using namespace sluice::contract;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// Every case runs through the JIT and through the interpreter (what runs under systemd's
// MemoryDenyWriteExecute=): both must agree.
MatchResult matchOf(const std::string& pattern, std::string_view subject)
{
    auto jitted = Pattern::compile(pattern, true);
    auto interpreted = Pattern::compile(pattern, false);
    REQUIRE(jitted.isOk());
    REQUIRE(interpreted.isOk());
    REQUIRE_FALSE((*interpreted)->jit());
    PatternMatcher m;
    const MatchResult result = m.match(**jitted, subject);
    CHECK(m.match(**interpreted, subject) == result);
    return result;
}

bool matches(const std::string& pattern, std::string_view subject)
{
    return matchOf(pattern, subject) == MatchResult::kMatch;
}

}  // namespace

TEST_CASE("patterns search unanchored unless anchored", "[contract][pattern]")
{
    CHECK(matches("ab", "ab"));
    CHECK(matches("ab", "xxabyy"));
    CHECK_FALSE(matches("ab", "a b"));
    CHECK(matches("^ab", "abc"));
    CHECK_FALSE(matches("^ab", "cab"));
    CHECK(matches("ab$", "cab"));
    CHECK_FALSE(matches("ab$", "abc"));
    CHECK(matches("^[A-Z]{2}$", "NL"));
    CHECK_FALSE(matches("^[A-Z]{2}$", "NLD"));
    CHECK(matches("", "anything"));
}

TEST_CASE("$ matches only at the very end, never before a trailing newline", "[contract][pattern]")
{
    CHECK_FALSE(matches("^NL$", "NL\n"));
    CHECK_FALSE(matches("NL$", "NL\n"));
    CHECK_FALSE(matches("^[a-z]+@[a-z]+$", "a@b\n"));
    CHECK(matches("^NL\\n$", "NL\n"));
    // Without multiline mode ^ and $ do not match at inner line breaks either.
    CHECK_FALSE(matches("^NL$", "x\nNL"));
    CHECK_FALSE(matches("^NL$", "NL\nx"));
}

TEST_CASE("patterns work on code points, with ECMAScript \\u escapes", "[contract][pattern]")
{
    CHECK(matches("^.{3}$", "\xc3\xa4\xc3\xb6\xc3\xbc"));  // three code points, six bytes
    CHECK_FALSE(matches("^.{6}$", "\xc3\xa4\xc3\xb6\xc3\xbc"));
    CHECK(matches("^\\u00e4$", "\xc3\xa4"));
    CHECK(matches("^[\\u0041-\\u005a]+$", "ABC"));
    CHECK_FALSE(matches("^\\u00e4$", "a"));
    CHECK(matches("^.$", "\xf0\x9f\x98\x80"));  // one code point outside the BMP
}

TEST_CASE("an invalid regex fails with its offset and PCRE2's message", "[contract][pattern]")
{
    auto p = Pattern::compile("^(ab");
    REQUIRE_FALSE(p.isOk());
    CHECK(p.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(p.status().message(), StartsWith("invalid regex at offset 4: "));
    CHECK_THAT(p.status().message(), Contains("missing closing parenthesis"));

    auto q = Pattern::compile("a[b");
    REQUIRE_FALSE(q.isOk());
    CHECK_THAT(q.status().message(), StartsWith("invalid regex at offset 3: "));

    auto r = Pattern::compile("ab*?+)");
    REQUIRE_FALSE(r.isOk());
    CHECK_THAT(r.status().message(), Contains("offset"));

    auto s = Pattern::compile("\\u12");  // ALT_BSUX: \u needs four hex digits
    CHECK(s.isOk());
    CHECK(matches("\\u12", "u12"));  // ...otherwise it is a literal u
}

TEST_CASE("a pattern keeps its source", "[contract][pattern]")
{
    auto p = Pattern::compile("^[a-z]+$");
    REQUIRE(p.isOk());
    CHECK((*p)->source() == "^[a-z]+$");
}

TEST_CASE("a catastrophic pattern is stopped by the match limit", "[contract][pattern]")
{
    // (a+)+$ on many a's and a final non-match backtracks exponentially; the match limit ends it.
    std::string subject(40, 'a');
    subject += '!';
    CHECK(matchOf("^(a+)+$", subject) == MatchResult::kLimit);
    CHECK(matchOf("^(a+)+$", std::string(40, 'a')) == MatchResult::kMatch);

    // Through the validator, a limit is a pattern mismatch that says so.
    auto pipeline = std::make_shared<PipelineSpec>();
    ContractSpec c = testing::shopContract();
    c.fields[testing::kCode].pattern = "^(a+)+$";
    pipeline->contracts = {c};
    auto set = ContractSet::build(pipeline);
    REQUIRE(set.isOk());
    Validator v(*set, testing::Harness::defaultLimits());
    Arena arena;
    std::string line = testing::event(",\"code\":\"" + subject + "\"") + std::string(Payload::kPadding, '\0');
    ParsedEvent e;
    Rejection why;
    CHECK_FALSE(v.validate(std::string_view(line.data(), line.size() - Payload::kPadding), testing::kReceivedAt,
                           testing::kNow, arena, e, why));
    CHECK(why.reason == Reason::kPatternMismatch);
    CHECK_THAT(why.message, Contains("(match limit reached)"));
    CHECK_THAT(why.message, !Contains(subject));
}

TEST_CASE("ContractSet::build compiles patterns and names the file and field of a bad one", "[contract]")
{
    auto pipeline = std::make_shared<PipelineSpec>();
    ContractSpec c = testing::shopContract();
    c.fields[testing::kEmail].pattern = "([a-z";
    pipeline->contracts = {c};
    auto set = ContractSet::build(pipeline);
    REQUIRE_FALSE(set.isOk());
    CHECK_THAT(set.status().message(), StartsWith("contracts/shop.json: fields.email.pattern: invalid regex at offset"));
}

TEST_CASE("ContractSet::build refuses a ref defined twice and finds contracts by ref", "[contract]")
{
    auto pipeline = std::make_shared<PipelineSpec>();
    pipeline->contracts = {testing::shopContract(), testing::otherContract(), testing::shopContract()};
    pipeline->contracts[2].path = "contracts/copy.json";
    auto dup = ContractSet::build(pipeline);
    REQUIRE_FALSE(dup.isOk());
    CHECK(dup.status().message() == "contracts/copy.json: contract t/shop/1.0.0 is defined twice");

    auto set = testing::buildSet();
    CHECK(set->find(testing::kRef) == 0);
    CHECK(set->find(testing::kOtherRef) == 1);
    CHECK(set->find("t/shop/1.0.1") == -1);
    CHECK(set->compiled(0).patterns[testing::kCountry] != nullptr);
    CHECK(set->compiled(0).patterns[testing::kTotal] == nullptr);
    CHECK(set->compiled(0).fieldIndex.at("note") == static_cast<int>(testing::kNote));
}
