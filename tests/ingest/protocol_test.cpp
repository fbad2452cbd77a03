// The acknowledged-mode wire format: request headers (each malformed kind refused) and replies
// (ok, duplicate, error; messages escaped so that the reply is valid JSON).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "ingest/protocol.h"

using namespace sluice;
using namespace sluice::ingest;
using Catch::Matchers::Contains;
using Json = nlohmann::json;

TEST_CASE("parseHeader reads producer and seq, ignoring unknown keys", "[ingest][protocol]")
{
    auto h = parseHeader(R"({"producer": "app-1", "seq": 42})");
    REQUIRE(h.isOk());
    CHECK(h->producer == "app-1");
    CHECK(h->seq == 42);

    auto extra = parseHeader(R"({"seq": 0, "future": {"x": [1]}, "producer": "p"})");
    REQUIRE(extra.isOk());
    CHECK(extra->producer == "p");
    CHECK(extra->seq == 0);

    auto max = parseHeader(R"({"producer": "p", "seq": 9223372036854775807})");
    REQUIRE(max.isOk());
    CHECK(max->seq == 9223372036854775807ull);

    auto utf8 = parseHeader("{\"producer\": \"caf\xc3\xa9-\\u00e9\", \"seq\": 1}");
    REQUIRE(utf8.isOk());
    CHECK(utf8->producer == "caf\xc3\xa9-\xc3\xa9");

    auto longest = parseHeader("{\"producer\": \"" + std::string(kMaxProducerBytes, 'p') + "\", \"seq\": 1}");
    REQUIRE(longest.isOk());
    CHECK(longest->producer.size() == kMaxProducerBytes);
}

TEST_CASE("parseHeader refuses each malformed header", "[ingest][protocol]")
{
    struct Case {
        const char* name;
        std::string frame;
        const char* message;
    };
    const std::vector<Case> cases = {
        {"empty", "", "the header frame must be a JSON object"},
        {"not JSON", "producer=p seq=1", "the header frame must be a JSON object"},
        {"truncated", R"({"producer": "p", "seq": 1)", "the header frame must be a JSON object"},
        {"array", R"(["p", 1])", "the header frame must be a JSON object"},
        {"string", R"("p")", "the header frame must be a JSON object"},
        {"invalid UTF-8", "{\"producer\": \"p\xff\", \"seq\": 1}", "the header frame must be a JSON object"},
        {"producer missing", R"({"seq": 1})", "header.producer must be a string"},
        {"producer a number", R"({"producer": 7, "seq": 1})", "header.producer must be a string"},
        {"producer null", R"({"producer": null, "seq": 1})", "header.producer must be a string"},
        {"producer empty", R"({"producer": "", "seq": 1})", "header.producer must be 1 to 256 bytes"},
        {"producer too long", "{\"producer\": \"" + std::string(kMaxProducerBytes + 1, 'p') + "\", \"seq\": 1}",
         "header.producer must be 1 to 256 bytes"},
        {"producer with newline", R"({"producer": "a\nb", "seq": 1})", "must not contain control characters"},
        {"producer with NUL", R"({"producer": "a\u0000b", "seq": 1})", "must not contain control characters"},
        {"producer with DEL", R"({"producer": "a)" "\x7f" R"(b", "seq": 1})", "must not contain control characters"},
        {"seq missing", R"({"producer": "p"})", "header.seq must be a non-negative integer"},
        {"seq a string", R"({"producer": "p", "seq": "1"})", "header.seq must be a non-negative integer"},
        {"seq negative", R"({"producer": "p", "seq": -1})", "header.seq must be a non-negative integer"},
        {"seq a real", R"({"producer": "p", "seq": 1.5})", "header.seq must be a non-negative integer"},
        {"seq an integral real", R"({"producer": "p", "seq": 1.0})", "header.seq must be a non-negative integer"},
        {"seq null", R"({"producer": "p", "seq": null})", "header.seq must be a non-negative integer"},
        {"seq 2^63", R"({"producer": "p", "seq": 9223372036854775808})", "header.seq must be below 2^63"},
        {"seq 2^64 - 1", R"({"producer": "p", "seq": 18446744073709551615})", "header.seq must be below 2^63"},
        {"seq beyond 64 bits", R"({"producer": "p", "seq": 18446744073709551616})", "header.seq must be a non-negative integer"},
    };
    for (const Case& c : cases) {
        INFO("case: " << c.name);
        auto h = parseHeader(c.frame);
        REQUIRE_FALSE(h.isOk());
        CHECK(h.status().code() == StatusCode::kInvalidArgument);
        CHECK_THAT(h.status().message(), Contains(c.message));
    }
}

TEST_CASE("formatReply: ok with counts and per-event errors", "[ingest][protocol]")
{
    RequestOutcome o;
    o.producer = "app-1";
    o.seq = 17;
    o.state = RequestState::kNew;
    o.accepted = 2;
    o.rejected = 1;
    o.errors.push_back({1, Reason::kWrongType, "field 'total' must be number, got string"});
    CHECK(formatReply(o) ==
          R"({"producer":"app-1","seq":17,"status":"ok","accepted":2,"rejected":1,"errors":[{"index":1,"reason":"wrong_type","message":"field 'total' must be number, got string"}]})");

    o.errors.clear();
    o.rejected = 0;
    CHECK(formatReply(o) == R"({"producer":"app-1","seq":17,"status":"ok","accepted":2,"rejected":0})");
}

TEST_CASE("formatReply: a duplicate is ok and says so", "[ingest][protocol]")
{
    RequestOutcome o;
    o.producer = "p";
    o.seq = 3;
    o.state = RequestState::kDuplicate;
    o.accepted = 5;
    CHECK(formatReply(o) == R"({"producer":"p","seq":3,"status":"ok","duplicate":true,"accepted":5,"rejected":0})");
}

TEST_CASE("formatReply: a refused request is an error with its reason", "[ingest][protocol]")
{
    RequestOutcome o;
    o.producer = "p";
    o.seq = 9;
    o.state = RequestState::kRejected;
    o.rejectReason = Reason::kTooLarge;
    o.rejectMessage = "message is 2000 bytes; the limit is 1000";
    o.accepted = 99;  // not part of an error reply
    CHECK(formatReply(o) ==
          R"({"producer":"p","seq":9,"status":"error","reason":"too_large","message":"message is 2000 bytes; the limit is 1000"})");

    // Without a readable header there is no producer or seq to echo.
    RequestOutcome bad;
    bad.state = RequestState::kRejected;
    bad.rejectReason = Reason::kBadRequest;
    bad.rejectMessage = "header.seq must be a non-negative integer";
    CHECK(formatReply(bad) == R"({"status":"error","reason":"bad_request","message":"header.seq must be a non-negative integer"})");
}

TEST_CASE("formatReply escapes producers and messages into valid JSON", "[ingest][protocol]")
{
    const std::string nasty = std::string("q\"uote \\back\nnew\r\ttab \x01\x1f end \xc3\xa9") + '\0' + "nul";
    RequestOutcome o;
    o.producer = "p\"1\\";
    o.seq = 1;
    o.state = RequestState::kRejected;
    o.rejectReason = Reason::kBadRequest;
    o.rejectMessage = nasty;
    const std::string text = formatReply(o);
    CHECK_THAT(text, Contains(R"(\"uote \\back\nnew\r\ttab \u0001\u001f end)"));
    CHECK_THAT(text, Contains(R"(\u0000nul)"));
    Json j = Json::parse(text);
    CHECK(j["producer"] == o.producer);
    CHECK(j["message"] == nasty);
    CHECK(j["status"] == "error");

    RequestOutcome ok;
    ok.producer = "p";
    ok.state = RequestState::kNew;
    ok.errors.push_back({0, Reason::kPatternMismatch, nasty});
    Json k = Json::parse(formatReply(ok));
    CHECK(k["errors"][0]["message"] == nasty);
    CHECK(k["errors"][0]["reason"] == "pattern_mismatch");
    CHECK(k["errors"][0]["index"] == 0);
}

TEST_CASE("formatReply caps the error list and says it did", "[ingest][protocol]")
{
    RequestOutcome o;
    o.producer = "p";
    o.state = RequestState::kNew;
    o.rejected = static_cast<uint32_t>(kMaxErrorsInReply + 5);
    for (uint32_t i = 0; i < kMaxErrorsInReply + 5; ++i)
        o.errors.push_back({i, Reason::kNotJson, "not JSON"});
    Json j = Json::parse(formatReply(o));
    CHECK(j["errors"].size() == kMaxErrorsInReply);
    CHECK(j["errors"].back()["index"] == kMaxErrorsInReply - 1);
    CHECK(j["errors_truncated"] == true);
    CHECK(j["rejected"] == kMaxErrorsInReply + 5);

    o.errors.resize(kMaxErrorsInReply);
    Json k = Json::parse(formatReply(o));
    CHECK(k["errors"].size() == kMaxErrorsInReply);
    CHECK_FALSE(k.contains("errors_truncated"));
}

TEST_CASE("every reason code can travel in a reply", "[ingest][protocol]")
{
    for (size_t i = 0; i < kReasonCount; ++i) {
        RequestOutcome o;
        o.producer = "p";
        o.state = RequestState::kNew;
        o.rejected = 1;
        o.errors.push_back({0, static_cast<Reason>(i), "m"});
        Json j = Json::parse(formatReply(o));
        CHECK(j["errors"][0]["reason"] == std::string(reasonCode(static_cast<Reason>(i))));
    }
}
