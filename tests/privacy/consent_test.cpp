#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "privacy/consent.h"

using namespace sluice;
using namespace sluice::privacy;

namespace {

OutputSpec output(OutputType type, std::vector<int> purposes)
{
    OutputSpec o;
    o.name = "test";
    o.type = type;
    o.purposes = std::move(purposes);
    return o;
}

ConsentMask maskOf(const std::vector<int>& levels)
{
    ConsentMask m = 0;
    for (int level : levels)
        m |= consentBit(level);
    return m;
}

}  // namespace

TEST_CASE("consent: every event consent subset x field level x output", "[consent]")
{
    // The expected outcome, written out by hand from spec section 5. For each output: which of
    // the 16 subsets of {0,1,2,3} it accepts, and which field levels it then decrypts. A subset
    // is numbered by its bit mask (bit i = level i), so "0000001100000011" lists masks 0..15.
    struct Expected {
        const char* name;
        OutputSpec spec;
        const char* accepts;     // '1' at position m: events with consent mask m appear
        const char* decrypts;    // '1' at position L: PII fields of level L are decrypted
    };
    const Expected table[] = {
        // Needs 1 and 2: masks 6 {1,2}, 7 {0,1,2}, 14 {1,2,3}, 15 {0,1,2,3}.
        {"granular [1,2]", output(OutputType::kGranular, {1, 2}), "0000001100000011", "0110"},
        // Needs 0: every odd mask.
        {"granular [0]", output(OutputType::kGranular, {0}), "0101010101010101", "1000"},
        // Highest level >= 1: every mask >= 2; [] (mask 0) and [0] (mask 1) never qualify.
        {"cumulative [1]", output(OutputType::kCumulative, {1}), "0011111111111111", "1100"},
        // Highest level >= 2: every mask >= 4, including {0,1,3} and {3} that lack level 2.
        {"cumulative [2]", output(OutputType::kCumulative, {2}), "0000111111111111", "1110"},
    };
    for (const auto& row : table) {
        for (ConsentMask m = 0; m < 16; ++m) {
            INFO(row.name << ", event consent mask " << m);
            bool accepted = outputAccepts(row.spec, m);
            CHECK(accepted == (row.accepts[m] == '1'));
            for (int level = 0; level <= 3; ++level) {
                INFO("field level " << level);
                bool decrypted = accepted && outputDecrypts(row.spec, level);
                CHECK(decrypted == (accepted && row.decrypts[level] == '1'));
            }
        }
        CHECK_FALSE(outputDecrypts(row.spec, -1));  // non-PII fields are never ciphertext
    }
}

TEST_CASE("consent: the reference workload's consent mix against granular [1,2]", "[consent]")
{
    OutputSpec analytics = output(OutputType::kGranular, {1, 2});
    CHECK(outputAccepts(analytics, maskOf({0, 1, 2})));
    CHECK_FALSE(outputAccepts(analytics, maskOf({0, 1})));
    CHECK_FALSE(outputAccepts(analytics, maskOf({0})));
    CHECK_FALSE(outputAccepts(analytics, maskOf({})));
}

TEST_CASE("consent: levels beyond 3 and malformed outputs", "[consent]")
{
    CHECK(outputAccepts(output(OutputType::kGranular, {63}), maskOf({63})));
    CHECK(outputAccepts(output(OutputType::kCumulative, {5}), maskOf({0, 40})));
    CHECK(outputDecrypts(output(OutputType::kCumulative, {5}), 5));
    CHECK_FALSE(outputDecrypts(output(OutputType::kCumulative, {5}), 6));
    CHECK_FALSE(outputAccepts(output(OutputType::kGranular, {64}), ~ConsentMask{0}));
    CHECK_FALSE(outputAccepts(output(OutputType::kGranular, {-1}), ~ConsentMask{0}));
    CHECK_FALSE(outputAccepts(output(OutputType::kCumulative, {}), ~ConsentMask{0}));
    CHECK_FALSE(outputAccepts(output(OutputType::kCumulative, {1, 2}), ~ConsentMask{0}));
    CHECK_FALSE(outputDecrypts(output(OutputType::kCumulative, {1, 2}), 0));
    CHECK_FALSE(outputDecrypts(output(OutputType::kGranular, {1}), 64));
    // A granular output with no levels takes every event and decrypts nothing.
    CHECK(outputAccepts(output(OutputType::kGranular, {}), 0));
    CHECK_FALSE(outputDecrypts(output(OutputType::kGranular, {}), 0));
}

TEST_CASE("consent: a derived row keeps the PII it decrypts and the masks it shows, nothing else", "[consent]")
{
    ContractSpec c;
    auto field = [&](const char* name, int pii) {
        FieldSpec f;
        f.name = name;
        f.pii = pii;
        c.fields.push_back(f);
    };
    field("session_id", 0);
    field("customer_id", 1);
    field("email", 2);
    field("ip", 2);
    field("country", -1);
    field("device", -1);
    // The reference output: granular [1, 2], email masked.
    OutputSpec analytics = output(OutputType::kGranular, {1, 2});
    analytics.maskedFields = {"email"};
    CHECK(derivedRowFields(analytics, c) == std::vector<bool>{false, true, true, true, false, false});
    // A masked non-PII field differs from the event's; a masked PII field the output does not
    // decrypt stays the event's ciphertext.
    OutputSpec support = output(OutputType::kCumulative, {1});
    support.maskedFields = {"device", "ip"};
    CHECK(derivedRowFields(support, c) == std::vector<bool>{true, true, false, false, false, true});
    // An output that decrypts nothing and masks nothing shares every field with the event.
    CHECK(derivedRowFields(output(OutputType::kGranular, {}), c) == std::vector<bool>(6, false));
}
