// The readers of a batch job's records (CSV cells: readTextRecord; flat JSON lines:
// validateRecord) apply the contract through the same Checker as the daemon's JSON events: for
// the same values they accept the same events and refuse with the same reason and message.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "contract/text_record.h"
#include "fixture.h"

using namespace sluice;
using namespace sluice::contract;
using namespace sluice::contract::testing;
using Catch::Matchers::Contains;

namespace {

// The layout of a CSV with one column per contract field, in contract order, plus "when" (the
// record's time) and "consent".
RecordLayout columnsLayout(const ContractSpec& spec)
{
    RecordLayout layout;
    layout.contract = 0;
    for (size_t f = 0; f < spec.fields.size(); ++f) {
        layout.byColumn.push_back({RecordLayout::Role::kField, static_cast<int>(f)});
        layout.byName[spec.fields[f].name] = {RecordLayout::Role::kField, static_cast<int>(f)};
    }
    layout.byColumn.push_back({RecordLayout::Role::kTime, -1});
    layout.byColumn.push_back({RecordLayout::Role::kConsent, -1});
    layout.byName["when"] = {RecordLayout::Role::kTime, -1};
    layout.byName["consent"] = {RecordLayout::Role::kConsent, -1};
    layout.byName["ignored"] = {RecordLayout::Role::kIgnore, -1};
    return layout;
}

struct Reading {
    bool ok = false;
    ParsedEvent event;
    Rejection why;
    RecordExtras extras;
};

class Readers {
public:
    Readers() : set_(buildSet()), validator_(set_, Harness::defaultLimits()), layout_(columnsLayout(shopContract())) {}

    // A CSV row: the required fields plus `cells` (field name -> cell text).
    Reading csv(const std::vector<std::pair<std::string, std::string>>& cells)
    {
        const ContractSpec spec = shopContract();
        std::vector<std::string> texts(spec.fields.size() + 2);
        texts[kSid] = "s-1";
        texts[kCountry] = "NL";
        texts[kTotal] = "42.5";
        for (const auto& [name, text] : cells) {
            const int f = name == "when" ? static_cast<int>(spec.fields.size())
                          : name == "consent" ? static_cast<int>(spec.fields.size()) + 1
                                              : spec.fieldIndex(name);
            REQUIRE(f >= 0);
            texts[static_cast<size_t>(f)] = text;
        }
        // Cells live in one padded buffer, as a job's chunk keeps them.
        buffer_.clear();
        std::vector<std::pair<size_t, size_t>> spans;
        for (const std::string& t : texts) {
            spans.emplace_back(buffer_.size(), t.size());
            buffer_ += t;
        }
        buffer_.append(64, '\0');
        std::vector<std::string_view> views;
        for (auto [o, n] : spans)
            views.emplace_back(buffer_.data() + o, n);
        Reading r;
        r.ok = readTextRecord(validator_, views, layout_, arena_, r.event, r.extras, r.why);
        return r;
    }

    // A JSON line holding the required fields plus `more` (JSON members with a leading comma).
    Reading jsonl(const std::string& more)
    {
        buffer_ = "{\"sid\":\"s-1\",\"country\":\"NL\",\"total\":42.5" + more + "}";
        const size_t n = buffer_.size();
        buffer_.append(64, '\0');
        Reading r;
        r.ok = validator_.validateRecord(std::string_view(buffer_.data(), n), layout_, arena_, r.event, r.extras, r.why);
        return r;
    }

private:
    std::shared_ptr<const ContractSet> set_;
    Validator validator_;
    RecordLayout layout_;
    Arena arena_;
    std::string buffer_;
};

}  // namespace

TEST_CASE("CSV cells and JSON values get the same verdict, reason and message", "[contract][record]")
{
    Harness daemon;
    Readers readers;
    struct Case {
        const char* field;
        std::string cell;  // CSV text
        std::string json;  // the same value as JSON
    };
    const std::vector<Case> cases = {
        {"items", "3", "3"},
        {"items", "3.0", "3.0"},
        {"items", "3.5", "3.5"},
        {"items", "x", "\"x\""},
        {"items", "true", "true"},
        {"items", "18446744073709551615", "18446744073709551615"},
        {"items", "-42", "-42"},
        {"items", "18446744073709551616", "18446744073709551616"},
        {"items", "-9223372036854775809", "-9223372036854775809"},
        {"items", "1e400", "1e400"},
        {"items", "1e3", "1e3"},
        {"ratios", "[1.5,2]", "[1.5,2]"},
        {"ratios", "[1.5,\"x\"]", "[1.5,\"x\"]"},
        {"ok", "true", "true"},
        {"ok", "1", "1"},
        {"ok", "yes", "\"yes\""},
        {"email", "a@b.c", "\"a@b.c\""},
        {"email", std::string(kCanary), "\"" + std::string(kCanary) + "\""},
        {"code", "xaby", "\"xaby\""},
        {"code", "xy", "\"xy\""},
        {"note", "123456789", "\"123456789\""},
        {"note", "42", "\"42\""},
        {"counts", "[1,2]", "[1,2]"},
        {"counts", "[1,\"x\"]", "[1,\"x\"]"},
        {"tags", "[\"a\",\"b\"]", "[\"a\",\"b\"]"},
        {"tags", "[\"a\",3]", "[\"a\",3]"},
        {"words", "[\"abc\",\"toolong\"]", "[\"abc\",\"toolong\"]"},
    };
    for (const Case& c : cases) {
        INFO("field " << c.field << " = " << c.cell);
        const Outcome viaJson = daemon.run(event(",\"" + std::string(c.field) + "\":" + c.json));
        const Reading viaCsv = readers.csv({{c.field, c.cell}});
        const Reading viaJsonl = readers.jsonl(",\"" + std::string(c.field) + "\":" + c.json);
        REQUIRE(viaCsv.ok == viaJson.ok);
        REQUIRE(viaJsonl.ok == viaJson.ok);
        if (!viaJson.ok) {
            CHECK(reasonCode(viaCsv.why.reason) == reasonCode(viaJson.why.reason));
            CHECK(viaCsv.why.message == viaJson.why.message);
            CHECK(viaJsonl.why.message == viaJson.why.message);
            CHECK(viaCsv.why.field == c.field);
            CHECK_THAT(viaCsv.why.message, !Contains(kCanary));
        } else {
            const size_t f = static_cast<size_t>(shopContract().fieldIndex(c.field));
            const Value& a = viaJson.event.fields[f];
            const Value& b = viaCsv.event.fields[f];
            CHECK(static_cast<int>(a.kind) == static_cast<int>(b.kind));
            std::string ja, jb, jc;
            appendJson(ja, a);
            appendJson(jb, b);
            appendJson(jc, viaJsonl.event.fields[f]);
            CHECK(ja == jb);
            CHECK(ja == jc);
        }
    }
}

TEST_CASE("CSV: an empty cell is an absent value; a required one is missing", "[contract][record]")
{
    Readers readers;
    Reading r = readers.csv({{"items", ""}});
    REQUIRE(r.ok);
    CHECK_FALSE(r.event.fields[kItems].present());
    r = readers.csv({{"sid", ""}});
    REQUIRE_FALSE(r.ok);
    CHECK(r.why.reason == Reason::kMissingField);
    CHECK(r.why.message == "required field 'sid' is missing");
    CHECK(r.why.field == "sid");
}

TEST_CASE("CSV: numbers beyond a double are refused as out of range", "[contract][record]")
{
    Readers readers;
    Reading r = readers.csv({{"total", "1e400"}});
    REQUIRE_FALSE(r.ok);
    CHECK(r.why.reason == Reason::kWrongType);
    CHECK_THAT(r.why.message, Contains("out of the range of a 64-bit floating-point number"));
    r = readers.csv({{"items", "99999999999999999999999"}});
    REQUIRE_FALSE(r.ok);
    CHECK(r.why.reason == Reason::kWrongType);
}

TEST_CASE("The job's own cells come back raw: time and consent", "[contract][record]")
{
    Readers readers;
    Reading r = readers.csv({{"when", "2024-01-02T03:04:05Z"}, {"consent", "yes"}});
    REQUIRE(r.ok);
    CHECK(r.extras.haveTime);
    CHECK(r.extras.time.s == "2024-01-02T03:04:05Z");
    CHECK(r.extras.haveConsent);
    CHECK(r.extras.consent.s == "yes");
    r = readers.csv({});
    REQUIRE(r.ok);
    CHECK_FALSE(r.extras.haveTime);
    CHECK_FALSE(r.extras.haveConsent);

    r = readers.jsonl(",\"when\":1700000000,\"consent\":[0,2],\"ignored\":{\"x\":1}");
    REQUIRE(r.ok);
    CHECK(r.extras.haveTime);
    CHECK(r.extras.time.kind == RawScalar::Kind::kInt);
    CHECK(r.extras.consentIsLevels);
    CHECK(r.extras.consentLevels == std::vector<int64_t>{0, 2});
}

TEST_CASE("JSON lines: unknown and duplicate names are refused as for events", "[contract][record]")
{
    Readers readers;
    Harness daemon;
    Reading r = readers.jsonl(",\"colour\":\"red\"");
    REQUIRE_FALSE(r.ok);
    const Outcome o = daemon.run(event(",\"colour\":\"red\""));
    CHECK(r.why.reason == Reason::kUnknownField);
    CHECK(r.why.message == o.why.message);
    r = readers.jsonl(",\"sid\":\"again\"");
    REQUIRE_FALSE(r.ok);
    CHECK(r.why.reason == Reason::kDuplicateField);
    r = readers.jsonl(",\"when\":1,\"when\":2");
    REQUIRE_FALSE(r.ok);
    CHECK(r.why.reason == Reason::kDuplicateField);
    r = Reading{};
    {
        Readers fresh;
        r = fresh.jsonl(",\"items\":1}x");
        REQUIRE_FALSE(r.ok);
        CHECK(r.why.reason == Reason::kNotJson);
    }
}
