// Issue 4: every reject reason comes back to an acknowledged producer in its reply, and is stored
// as a dead letter with the producer, the sequence number and the event's index.
//
// One request carries one event per event-level reason (between valid events, with a blank line
// that must not count as an index). Whole-request errors (malformed envelope, oversized body,
// a sequence number older than the dedupe window) go through a raw DEALER socket, so that the
// frames are exactly what the test says; a REQ socket (empty delimiter frame) must work too.
#include <catch2/catch.hpp>

#include <signal.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <zmq.hpp>

#include "harness.h"
#include "ingest/protocol.h"
#include "support.h"
#include "workload/generator.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

constexpr size_t kMaxEventSize = 4096;
constexpr size_t kMaxMessageSize = 65536;

std::string event(const std::string& id, const std::string& fields)
{
    return R"({"meta":{"contract":"acme/checkout/1.0.0","consent":[0,1],"event_id":")" + id + R"("},)" + fields + "}";
}

const std::string kFields = R"("session_id":"s-1","customer_id":"c-1","country":"NL","total":1.5)";

// Receives one multi-part message; nullopt after `timeout`.
std::optional<std::vector<std::string>> receive(zmq::socket_t& socket, std::chrono::milliseconds timeout)
{
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0)
        return std::nullopt;
    std::vector<std::string> frames;
    zmq::message_t part;
    do {
        if (!socket.recv(part, zmq::recv_flags::none))
            return std::nullopt;
        frames.emplace_back(static_cast<const char*>(part.data()), part.size());
    } while (part.more());
    return frames;
}

void sendFrames(zmq::socket_t& socket, const std::vector<std::string>& frames)
{
    for (size_t i = 0; i < frames.size(); ++i)
        socket.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

std::string header(const std::string& producer, uint64_t seq)
{
    return R"({"producer":")" + producer + R"(","seq":)" + std::to_string(seq) + "}";
}

// Sends a request as `frames` and returns the parsed reply (its last frame) and the frame count.
std::pair<ingest::Reply, size_t> roundTrip(zmq::socket_t& socket, const std::vector<std::string>& frames)
{
    sendFrames(socket, frames);
    auto reply = receive(socket, std::chrono::seconds(20));
    REQUIRE(reply);
    auto parsed = ingest::parseReply(reply->back());
    INFO(reply->back());
    REQUIRE(parsed);
    return {*parsed, reply->size()};
}

}  // namespace

TEST_CASE("every reject reason reaches the acknowledged producer and the dead letters", "[integration][durability]")
{
    TempDir dir("sluice-rejects");
    auto options = DaemonOptions::acknowledgedOnly(dir, "[ingest]\nmax_event_size = " + std::to_string(kMaxEventSize) +
        "\nmax_message_size = " + std::to_string(kMaxMessageSize) +
        "\ndedupe_window = 64\n[batch]\nmax_delay = 20ms\n");
    Daemon daemon(dir, options);
    REQUIRE(daemon.start());
    const std::string db = daemon.database();

    SECTION("one event per reason in one request")
    {
        std::vector<std::string> lines;
        std::vector<std::pair<uint32_t, Reason>> expected;
        auto add = [&](std::string line, std::optional<Reason> reason) {
            if (reason)
                expected.emplace_back(static_cast<uint32_t>(lines.size()), *reason);
            lines.push_back(std::move(line));
        };
        add(event("valid-1", kFields), std::nullopt);
        workload::Options wo;
        wo.invalidFraction = 1.0;
        workload::Generator generator(wo);
        for (int i = 0; i < 10; ++i) {
            std::string line;
            auto reason = generator.next(line);
            REQUIRE(reason);
            add(line, reason);
        }
        add(event("bad-utf8", R"("session_id":"s-)" + std::string("\xff\xfe") + R"(","country":"NL","total":1.5)"),
            Reason::kBadUtf8);
        add(event("too-large", kFields + R"(,"device":")" + std::string(kMaxEventSize, 'x') + "\""), Reason::kTooLarge);
        add(event("too-deep", kFields + R"(,"device":)" + std::string(20, '[') + std::string(20, ']')),
            Reason::kTooDeep);
        add(R"({"session_id":"s-1","country":"NL","total":1.5})", Reason::kBadMeta);
        add(event("duplicate-field", kFields + R"(,"country":"DE")"), Reason::kDuplicateField);
        add(event("valid-2", kFields), std::nullopt);

        // A blank line in the middle is skipped and does not count as an index.
        std::string body;
        for (size_t i = 0; i < lines.size(); ++i) {
            body += lines[i] + "\n";
            if (i == 5)
                body += "\n";
        }
        std::set<Reason> reasons;
        for (const auto& [index, reason] : expected)
            reasons.insert(reason);
        REQUIRE(reasons.size() == 15);  // every event-level reason of spec section 9

        TrackedProducer::Options po;
        po.endpoint = daemon.routerEndpoint();
        po.producerId = "rejects-producer";
        po.timeoutMs = 5000;
        po.giveUpMs = 20'000;
        TrackedProducer producer(po);
        REQUIRE(producer.sendBody(body, static_cast<uint32_t>(lines.size()), {}));
        REQUIRE(producer.flush());
        REQUIRE(producer.report().unanswered == 0);
        const auto settled = producer.settled();
        REQUIRE(settled.size() == 1);
        const ingest::Reply& reply = settled.begin()->second.reply;
        CHECK(reply.ok);
        CHECK(reply.accepted == 2);
        CHECK(reply.rejected == expected.size());
        auto describe = [](const std::vector<std::pair<uint32_t, Reason>>& errors) {
            std::vector<std::string> out;
            for (const auto& [index, reason] : errors)
                out.push_back(std::to_string(index) + ":" + std::string(reasonCode(reason)));
            return out;
        };
        CHECK(describe(reply.errors) == describe(expected));

        std::vector<std::vector<std::string>> stored;
        for (const auto& [index, reason] : expected)
            stored.push_back({"rejects-producer", "1", std::to_string(index), std::string(reasonCode(reason))});
        CHECK(queryRows(db, "SELECT producer, seq, event_index, reason FROM dead_letters ORDER BY event_index") ==
              stored);
        CHECK(queryInt(db, "SELECT count(*) FROM events_acme_checkout_1_0_0 WHERE event_id IN ('valid-1', 'valid-2')") ==
              2);
    }

    SECTION("a retry is answered with the original's per-event errors")
    {
        zmq::context_t context(1);
        zmq::socket_t dealer(context, zmq::socket_type::dealer);
        dealer.set(zmq::sockopt::linger, 0);
        dealer.connect(daemon.routerEndpoint());
        auto exchange = [&](const std::vector<std::string>& frames) {
            sendFrames(dealer, frames);
            auto reply = receive(dealer, std::chrono::seconds(20));
            REQUIRE(reply);
            INFO(reply->back());
            auto json = nlohmann::json::parse(reply->back(), nullptr, false);
            REQUIRE(json.is_object());
            return json;
        };

        const std::string body = event("ok-1", kFields) + "\n" + event("wrong-type", kFields + R"(,"items":"three")") +
                                 "\n\n" + R"({"meta":{"consent":[0]}})" + "\n" + event("ok-2", kFields) + "\n";
        const auto original = exchange({header("retry-producer", 7), body});
        CHECK_FALSE(original.contains("duplicate"));
        CHECK(original["accepted"] == 2);
        CHECK(original["rejected"] == 2);
        REQUIRE(original["errors"].size() == 2);
        CHECK(original["errors"][0]["index"] == 1);
        CHECK(original["errors"][0]["reason"] == "wrong_type");
        CHECK(original["errors"][1]["index"] == 2);
        CHECK(original["errors"][1]["reason"] == "bad_meta");

        const auto retry = exchange({header("retry-producer", 7), body});
        CHECK(retry["duplicate"] == true);
        CHECK(retry["accepted"] == 2);
        CHECK(retry["rejected"] == 2);
        CHECK(retry["errors"] == original["errors"]);

        // A retry of a request with more errors than a reply lists is truncated the same way.
        std::string many;
        for (size_t i = 0; i < ingest::kMaxErrorsInReply + 5; ++i)
            many += "{}\n";
        const auto first = exchange({header("retry-producer", 8), many});
        const auto again = exchange({header("retry-producer", 8), many});
        CHECK(again["duplicate"] == true);
        CHECK(again["rejected"] == ingest::kMaxErrorsInReply + 5);
        CHECK(first["errors"].size() == ingest::kMaxErrorsInReply);
        CHECK(again["errors"] == first["errors"]);
        CHECK(again["errors_truncated"] == true);
        // Nothing of the retries was stored twice.
        CHECK(queryInt(db, "SELECT count(*) FROM dead_letters WHERE producer = 'retry-producer'") ==
              static_cast<int64_t>(2 + ingest::kMaxErrorsInReply + 5));
    }

    SECTION("a message refused as a whole counts each of its lines as received and rejected")
    {
        zmq::context_t context(1);
        zmq::socket_t dealer(context, zmq::socket_type::dealer);
        dealer.set(zmq::sockopt::linger, 0);
        dealer.connect(daemon.routerEndpoint());
        const std::string three =
            event("w-1", kFields) + "\n" + event("w-2", kFields) + "\n \n" + event("w-3", kFields) + "\n";
        auto [badHeader, n1] = roundTrip(dealer, {"not a header", three});
        CHECK(badHeader.errorReason == "bad_request");
        std::string big;
        int64_t bigLines = 0;
        for (; big.size() <= kMaxMessageSize; ++bigLines)
            big += event("big-" + std::to_string(bigLines), kFields) + "\n";
        auto [tooLarge, n2] = roundTrip(dealer, {header("whole-producer", 1), big});
        CHECK(tooLarge.errorReason == "too_large");

        // Replies come after the commit: both batches are in the table.
        const std::string lines = std::to_string(3 + bigLines);
        CHECK(queryRows(db, "SELECT sum(received), sum(committed), sum(duplicates), sum(rejected) FROM batches") ==
              std::vector<std::vector<std::string>>{{lines, "0", "0", lines}});
        CHECK(queryInt(db, "SELECT count(*) FROM dead_letters") == 2);
    }

    SECTION("whole-request errors, a stale sequence number, and a REQ socket")
    {
        zmq::context_t context(1);
        zmq::socket_t dealer(context, zmq::socket_type::dealer);
        dealer.set(zmq::sockopt::linger, 0);
        dealer.connect(daemon.routerEndpoint());
        const std::string valid = event("raw-1", kFields);

        auto [notJson, n1] = roundTrip(dealer, {"not a header", valid});
        CHECK_FALSE(notJson.ok);
        CHECK(notJson.errorReason == "bad_request");
        auto [noSeq, n2] = roundTrip(dealer, {R"({"producer":"raw-producer"})", valid});
        CHECK_FALSE(noSeq.ok);
        CHECK(noSeq.errorReason == "bad_request");
        auto [oneFrame, n3] = roundTrip(dealer, {valid});
        CHECK_FALSE(oneFrame.ok);
        CHECK(oneFrame.errorReason == "bad_request");
        auto [threeFrames, n4] = roundTrip(dealer, {header("raw-producer", 1), valid, valid});
        CHECK_FALSE(threeFrames.ok);
        CHECK(threeFrames.errorReason == "bad_request");

        // A body over max_message_size (but under ZMQ_MAXMSGSIZE, which would drop the peer).
        const std::string big(kMaxMessageSize + 1, ' ');
        auto [tooLarge, n5] = roundTrip(dealer, {header("raw-producer", 2), big});
        CHECK_FALSE(tooLarge.ok);
        CHECK(tooLarge.errorReason == "too_large");
        CHECK(tooLarge.seq == 2);

        // Sequence numbers: 1000 is new; 100 is older than the 64-wide window: refused; 1000 again
        // is a duplicate, answered ok with the original counts.
        auto [fresh, n6] = roundTrip(dealer, {header("raw-producer", 1000), valid});
        CHECK(fresh.ok);
        CHECK_FALSE(fresh.duplicate);
        CHECK(fresh.accepted == 1);
        auto [stale, n7] = roundTrip(dealer, {header("raw-producer", 100), event("raw-stale", kFields)});
        CHECK_FALSE(stale.ok);
        CHECK(stale.errorReason == "bad_request");
        CHECK(stale.seq == 100);
        auto [again, n8] = roundTrip(dealer, {header("raw-producer", 1000), valid});
        CHECK(again.ok);
        CHECK(again.duplicate);
        CHECK(again.accepted == 1);

        // A DEALER that adds the empty delimiter itself gets it back before the reply.
        auto [delimited, frames] = roundTrip(dealer, {"", header("raw-producer", 1001), event("raw-2", kFields)});
        CHECK(delimited.ok);
        CHECK(delimited.seq == 1001);
        CHECK(frames == 2);

        // A REQ socket: the envelope is added and stripped by ZeroMQ; strict send/receive turns.
        zmq::socket_t req(context, zmq::socket_type::req);
        req.set(zmq::sockopt::linger, 0);
        req.connect(daemon.routerEndpoint());
        for (uint64_t seq = 1; seq <= 2; ++seq) {
            auto [r, n] = roundTrip(req, {header("req-producer", seq), event("req-" + std::to_string(seq), kFields)});
            CHECK(r.ok);
            CHECK(r.seq == seq);
            CHECK(r.accepted == 1);
            CHECK(n == 1);
        }

        CHECK(queryRows(db, "SELECT reason, coalesce(producer, '-'), coalesce(seq, '-'), coalesce(event_index, '-'), "
                            "input_bytes > 0 FROM dead_letters ORDER BY id") ==
              std::vector<std::vector<std::string>>{
                  {"bad_request", "-", "-", "-", "1"},
                  {"bad_request", "-", "-", "-", "1"},
                  {"bad_request", "-", "-", "-", "0"},  // one frame: no body
                  {"bad_request", "-", "-", "-", "1"},  // three frames: the header is not read
                  {"too_large", "raw-producer", "2", "-", "1"},
                  {"bad_request", "raw-producer", "100", "-", "1"},
              });
        CHECK(queryInt(db, "SELECT input_bytes FROM dead_letters WHERE reason = 'too_large'") ==
              static_cast<int64_t>(big.size()));
        const auto counts = eventIdCounts(db, kEventsTable);
        CHECK(counts == std::map<std::string, int64_t>{{"raw-1", 1}, {"raw-2", 1}, {"req-1", 1}, {"req-2", 1}});
    }
    REQUIRE(daemon.stop(SIGTERM) == 0);
    CHECK(queryInt(db, "SELECT count(*) FROM batches WHERE received != committed + duplicates + rejected") == 0);
}
