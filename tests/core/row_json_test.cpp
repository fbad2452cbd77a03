// RowEncoder: stored rows as JSON, checked by parsing the output with nlohmann/json.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/row_json.h"

namespace sluice {
namespace {

ContractSpec contract()
{
    ContractSpec c;
    c.ref = "acme/checkout/1.0.0";
    auto field = [&](const char* name, FieldType type, int pii = -1, bool array = false) {
        FieldSpec f;
        f.name = name;
        f.type = type;
        f.pii = pii;
        f.array = array;
        c.fields.push_back(f);
    };
    field("session_id", FieldType::kString, 0);
    field("email", FieldType::kString, 2);
    field("total", FieldType::kNumber);
    field("items", FieldType::kInteger);
    field("gift", FieldType::kBoolean);
    field("tags", FieldType::kString, -1, true);
    field("aliases", FieldType::kString, 1, true);
    return c;
}

const std::vector<std::string> kColumns = {"seq", "batch_id", "event_id", "event_time", "received_at", "key_link",
                                           "consent", "session_id", "email", "total", "items", "gift", "tags",
                                           "aliases"};

std::vector<Cell> row()
{
    return {Cell::ofInt(17), Cell::ofInt(3), Cell::ofText("e-1"), Cell::ofInt(1763712000123),
            Cell::ofInt(1763712000200), Cell::ofText("8a1f"), Cell::ofText("[0,1]"), Cell::ofText("AQE6"),
            Cell::null(), Cell::ofReal(42.0), Cell::ofInt(3), Cell::ofInt(1), Cell::ofText("[\"a\",\"b \\\"q\\\"\"]"),
            Cell::ofText("[\"X1\",\"X2\"]")};
}

}  // namespace

TEST_CASE("an event renders as the producer's object with the daemon's columns under meta", "[core][row_json]")
{
    const ContractSpec c = contract();
    RowEncoder e = RowEncoder::forEvents(c);
    e.prepare(kColumns);
    std::string out;
    e.encode(row(), out);
    auto j = nlohmann::ordered_json::parse(out);
    CHECK(j["meta"]["contract"] == "acme/checkout/1.0.0");
    CHECK(j["meta"]["seq"] == 17);
    CHECK(j["meta"]["batch_id"] == 3);
    CHECK(j["meta"]["event_id"] == "e-1");
    CHECK(j["meta"]["event_time"] == 1763712000123);
    CHECK(j["meta"]["key_link"] == "8a1f");
    CHECK(j["meta"]["consent"] == nlohmann::json::array({0, 1}));
    CHECK(j["session_id"] == "AQE6");
    CHECK(!j.contains("email"));  // NULL: the event did not have it
    CHECK(j["total"].is_number_float());
    CHECK(j["total"] == 42.0);
    CHECK(j["items"] == 3);
    CHECK(j["gift"] == true);
    CHECK(j["tags"] == nlohmann::json::array({"a", "b \"q\""}));
    CHECK(j["aliases"] == nlohmann::json::array({"X1", "X2"}));
    CHECK(j.begin().key() == "meta");
    CHECK(out.find("\"total\":42.0") != std::string::npos);
}

TEST_CASE("a hook renders PII values and array elements; the rest stays as stored", "[core][row_json]")
{
    const ContractSpec c = contract();
    RowEncoder e = RowEncoder::forEvents(c);
    e.prepare(kColumns);
    RowEncoder::ValueHook hook = [](const FieldSpec& f, std::string_view stored, int index, std::string& out) {
        if (stored == "X2")
            return false;
        appendJsonString(out, f.name + ":" + std::string(stored) + ":" + std::to_string(index));
        return true;
    };
    std::string out;
    e.encode(row(), out, &hook);
    auto j = nlohmann::json::parse(out);
    CHECK(j["session_id"] == "session_id:AQE6:-1");
    CHECK(j["aliases"] == nlohmann::json::array({"aliases:X1:0", "X2"}));
    CHECK(j["tags"] == nlohmann::json::array({"a", "b \"q\""}));  // not PII: never through the hook
}

TEST_CASE("a derived row names its output, keeps event_seq and shows masks as text", "[core][row_json]")
{
    const ContractSpec c = contract();
    OutputSpec o;
    o.name = "analytics";
    o.maskedFields = {"items"};
    RowEncoder e = RowEncoder::forEvents(c, &o);
    e.prepare({"seq", "event_seq", "batch_id", "email", "items"});
    std::string out;
    e.encode({Cell::ofInt(4), Cell::ofInt(17), Cell::ofInt(3), Cell::ofText("ann@example.com"), Cell::ofText("9f86")},
             out);
    auto j = nlohmann::json::parse(out);
    CHECK(j["meta"]["output"] == "analytics");
    CHECK(j["meta"]["event_seq"] == 17);
    CHECK(j["email"] == "ann@example.com");
    CHECK(j["items"] == "9f86");
}

TEST_CASE("plain rows render every column by type after the given meta; blobs are left out", "[core][row_json]")
{
    RowEncoder e = RowEncoder::forColumns({{"aggregation", "\"revenue\""}, {"batch_id", "9"}});
    e.prepare({"window_start", "country", "count", "avg_total", "hll", "none"});
    std::string out;
    e.encode({Cell::ofText("2025-11-21T08:00:00.000Z"), Cell::ofText("N\"L\n\x01"), Cell::ofInt(5),
              Cell::ofReal(1.5), Cell::ofBlob("xx"), Cell::null()},
             out);
    auto j = nlohmann::json::parse(out);
    CHECK(j["meta"]["aggregation"] == "revenue");
    CHECK(j["meta"]["batch_id"] == 9);
    CHECK(j["country"] == "N\"L\n\x01");
    CHECK(j["count"] == 5);
    CHECK(j["avg_total"] == 1.5);
    CHECK(!j.contains("hll"));
    CHECK(!j.contains("none"));
}

TEST_CASE("appendJsonDouble keeps doubles round-trippable and valid JSON", "[core][row_json]")
{
    for (double v : {0.1, 1e300, -2.5e-308, 123456789.125, 3.0}) {
        std::string out;
        appendJsonDouble(out, v);
        CHECK(nlohmann::json::parse(out).get<double>() == v);
    }
    std::string nan;
    appendJsonDouble(nan, std::nan(""));
    CHECK(nan == "null");
}

}  // namespace sluice
