// The ingest thread over real ZeroMQ sockets on loopback ports: a DEALER sends requests, the test
// plays the pipeline (pops batches, posts their outcomes), the DEALER gets the replies. Waits have
// generous bounds; nothing here measures time.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "ingest/protocol.h"
#include "ingest/receiver.h"

using namespace sluice;
using namespace sluice::ingest;
using Catch::Matchers::Contains;
using Json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr auto kPatience = 10s;  // an upper bound for things that happen in microseconds

bool waitFor(const std::function<bool()>& done)
{
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

Options routerOptions()
{
    Options o;
    o.router = {"tcp://127.0.0.1:0"};
    o.batch.maxEvents = 1;  // every request closes its batch at once: no clock needed
    o.batch.maxBytes = 1 << 20;
    o.batch.maxDelayMs = 200;
    o.batch.minPartEvents = 1;  // the tests below follow parts of a request or two
    o.maxMessageBytes = 4096;
    o.deadLetterInputBytes = 16;
    o.heartbeatIvlMs = 0;
    return o;
}

// A Receiver on its own thread, with the queue and ack channel the pipeline would hold.
struct Rig {
    ManualClock clock;
    BoundedQueue<Batch> out;
    AckChannel acks;
    IngestStats stats;
    Receiver receiver;
    std::string endpoint;

    explicit Rig(Options options, size_t queueCapacity = 64, uint64_t window = 1024)
        : out(queueCapacity), receiver(std::move(options), clock, DedupeIndex(window), 100, out, acks, stats)
    {
        Status s = receiver.start();
        INFO(s.message());
        REQUIRE(s.isOk());  // on failure the thread has already ended: nothing to wait for
        // From here on a failed REQUIRE would leave ~Receiver waiting for acks that never close.
        const auto bound = receiver.boundEndpoints();
        CHECK(bound.size() == 1);
        endpoint = bound.empty() ? std::string() : bound[0];
    }
    ~Rig()
    {
        receiver.requestDrain();
        acks.close();
        receiver.join();
    }

    Batch pop()
    {
        auto b = out.popFor(kPatience);
        REQUIRE(b.has_value());
        return std::move(*b);
    }

    // Posts the outcome the pipeline would report for each acknowledged request of `batch`.
    void ack(const Batch& batch, uint32_t accepted = 1)
    {
        AckBatch a;
        a.batchId = batch.id;
        for (const Request& r : batch.requests) {
            RequestOutcome o = RequestOutcome::of(r);
            o.accepted = r.state == RequestState::kRejected ? 0 : accepted;
            a.outcomes.push_back(std::move(o));
        }
        acks.push(std::move(a));
    }
};

struct Dealer {
    zmq::context_t context{1};
    zmq::socket_t socket{context, zmq::socket_type::dealer};

    explicit Dealer(const std::string& endpoint, int sendHwm = 1000)
    {
        socket.set(zmq::sockopt::linger, 0);
        socket.set(zmq::sockopt::rcvtimeo, static_cast<int>(std::chrono::milliseconds(kPatience).count()));
        socket.set(zmq::sockopt::sndhwm, sendHwm);
        socket.connect(endpoint);
    }

    void sendFrames(const std::vector<std::string>& frames)
    {
        for (size_t i = 0; i < frames.size(); ++i) {
            auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
            REQUIRE(socket.send(zmq::buffer(frames[i]), flags).has_value());
        }
    }
    void send(const std::string& producer, uint64_t seq, const std::string& body)
    {
        sendFrames({header(producer, seq), body});
    }
    static std::string header(const std::string& producer, uint64_t seq)
    {
        return "{\"producer\":\"" + producer + "\",\"seq\":" + std::to_string(seq) + "}";
    }

    // The frames of the next reply; fails the test when none comes.
    std::vector<std::string> receive()
    {
        std::vector<std::string> frames;
        zmq::message_t m;
        do {
            auto got = socket.recv(m, zmq::recv_flags::none);
            REQUIRE(got.has_value());
            frames.emplace_back(static_cast<const char*>(m.data()), m.size());
        } while (m.more());
        return frames;
    }
    Json reply()
    {
        auto frames = receive();
        REQUIRE(frames.size() == 1);
        return Json::parse(frames[0]);
    }
};

const std::string kTwoEvents = "{\"a\":1}\n{\"a\":2}\n";

}  // namespace

TEST_CASE("receiver: a request becomes a batch; its reply goes out after the ack", "[ingest][receiver]")
{
    Rig rig(routerOptions());
    CHECK_THAT(rig.endpoint, Contains("tcp://127.0.0.1:"));
    CHECK(rig.endpoint != "tcp://127.0.0.1:0");
    Dealer dealer(rig.endpoint);
    dealer.send("app-1", 5, kTwoEvents);

    Batch batch = rig.pop();
    CHECK(batch.id == 100);  // numbering starts at the id the receiver was given
    REQUIRE(batch.requests.size() == 1);
    const Request& r = batch.requests[0];
    CHECK(r.mode == RequestMode::kAcknowledged);
    CHECK(r.state == RequestState::kNew);
    CHECK(r.producer == "app-1");
    CHECK(r.seq == 5);
    CHECK(r.events == 2);
    CHECK(r.payload.view() == kTwoEvents);
    CHECK(r.wireBytes == kTwoEvents.size());
    CHECK_FALSE(r.routingId.empty());
    CHECK_FALSE(r.reqEnvelope);
    CHECK(r.receivedAtMs == rig.clock.wallMs());
    CHECK(r.receivedMonoNs == rig.clock.monoNs());
    CHECK(batch.events == 2);
    CHECK(batch.closeReason == CloseReason::kEvents);

    // Nothing is answered before the ack.
    zmq::message_t early;
    dealer.socket.set(zmq::sockopt::rcvtimeo, 0);
    CHECK_FALSE(dealer.socket.recv(early, zmq::recv_flags::none).has_value());
    dealer.socket.set(zmq::sockopt::rcvtimeo, static_cast<int>(std::chrono::milliseconds(kPatience).count()));

    rig.ack(batch, 2);
    Json reply = dealer.reply();
    CHECK(reply["producer"] == "app-1");
    CHECK(reply["seq"] == 5);
    CHECK(reply["status"] == "ok");
    CHECK(reply["accepted"] == 2);
    CHECK(reply["rejected"] == 0);
    CHECK_FALSE(reply.contains("duplicate"));
    CHECK(waitFor([&] { return rig.stats.repliesSent.load() == 1; }));
    CHECK(rig.stats.messages.load() == 1);
    CHECK(rig.stats.bytes.load() == kTwoEvents.size());
    CHECK(rig.stats.batchesClosed.load() == 1);
}

TEST_CASE("receiver: a retry is a duplicate, in flight or committed, answered ok", "[ingest][receiver]")
{
    Rig rig(routerOptions());
    Dealer dealer(rig.endpoint);
    dealer.send("p", 1, kTwoEvents);
    dealer.send("p", 1, kTwoEvents);  // a retry before the first was acknowledged
    Batch first = rig.pop();
    Batch retry = rig.pop();
    CHECK(first.requests[0].state == RequestState::kNew);
    CHECK(retry.requests[0].state == RequestState::kDuplicate);
    CHECK(retry.requests[0].payload.size() == 0);  // nothing of a duplicate is applied or kept
    CHECK(retry.requests[0].events == 2);          // but it counts as received
    CHECK(retry.id == first.id + 1);
    rig.ack(first, 2);
    rig.ack(retry, 2);
    Json a = dealer.reply();
    Json b = dealer.reply();
    CHECK(a["status"] == "ok");
    CHECK_FALSE(a.contains("duplicate"));
    CHECK(b["status"] == "ok");
    CHECK(b["duplicate"] == true);
    CHECK(b["seq"] == 1);

    // After the commit was acknowledged, a retry is still a duplicate.
    dealer.send("p", 1, kTwoEvents);
    Batch later = rig.pop();
    CHECK(later.requests[0].state == RequestState::kDuplicate);
    rig.ack(later, 2);
    CHECK(dealer.reply()["duplicate"] == true);
    CHECK(rig.stats.duplicateRequests.load() == 2);
}

TEST_CASE("receiver: a sequence number below the window is refused as stale", "[ingest][receiver]")
{
    Rig rig(routerOptions(), 64, 64);
    Dealer dealer(rig.endpoint);
    dealer.send("p", 100, kTwoEvents);
    Batch b = rig.pop();
    rig.ack(b);
    dealer.reply();
    dealer.send("p", 10, kTwoEvents);
    Batch stale = rig.pop();
    REQUIRE(stale.requests.size() == 1);
    const Request& r = stale.requests[0];
    CHECK(r.state == RequestState::kRejected);
    CHECK(r.rejectReason == Reason::kBadRequest);
    CHECK_THAT(r.rejectMessage, Contains("sequence 10 is older than the window of remembered requests (from 36)"));
    CHECK(r.events == 2);  // each line of a refused message counts as received (and rejected)
    rig.ack(stale);
    Json reply = dealer.reply();
    CHECK(reply["status"] == "error");
    CHECK(reply["reason"] == "bad_request");
    CHECK(reply["seq"] == 10);
    CHECK(rig.stats.staleRequests.load() == 1);
}

TEST_CASE("receiver: a REQ-style envelope gets its empty delimiter back", "[ingest][receiver]")
{
    Rig rig(routerOptions());
    Dealer dealer(rig.endpoint);
    dealer.sendFrames({"", Dealer::header("req", 1), kTwoEvents});
    Batch batch = rig.pop();
    REQUIRE(batch.requests.size() == 1);
    CHECK(batch.requests[0].reqEnvelope);
    CHECK(batch.requests[0].state == RequestState::kNew);
    CHECK(batch.requests[0].producer == "req");
    rig.ack(batch);
    auto frames = dealer.receive();
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].empty());
    CHECK(Json::parse(frames[1])["status"] == "ok");
}

TEST_CASE("receiver: malformed envelopes become refused requests, answered after the ack", "[ingest][receiver]")
{
    struct Case {
        const char* name;
        std::vector<std::string> frames;
        const char* message;
        bool reqEnvelope;  // a leading empty frame reads as a REQ envelope: the reply echoes it
    };
    const std::string body = "{\"x\":1}\n" + std::string(100, ' ');
    const std::vector<Case> cases = {
        {"one frame", {body}, "a request has two frames after the optional empty delimiter: a header and a body (got 1)", false},
        {"three frames", {Dealer::header("p", 1), body, "extra"}, "(got 3)", false},
        {"six frames", {"a", "b", "c", "d", "e", "f"}, "(got 4)", false},
        {"delimiter only", {""}, "(got 0)", true},
        {"header not JSON", {"producer=p", body}, "the header frame must be a JSON object", false},
        {"negative seq", {R"({"producer":"p","seq":-1})", body}, "header.seq must be a non-negative integer", false},
    };
    Rig rig(routerOptions());
    Dealer dealer(rig.endpoint);
    uint64_t refused = 0;
    for (const Case& c : cases) {
        INFO("case: " << c.name);
        dealer.sendFrames(c.frames);
        Batch batch = rig.pop();
        REQUIRE(batch.requests.size() == 1);
        const Request& r = batch.requests[0];
        CHECK(r.mode == RequestMode::kAcknowledged);
        CHECK(r.state == RequestState::kRejected);
        CHECK(r.rejectReason == Reason::kBadRequest);
        CHECK_THAT(r.rejectMessage, Contains(c.message));
        CHECK(r.events == 1);          // one received, one rejected
        CHECK(r.producer.empty());
        CHECK(r.payload.size() <= 16); // the capped copy for the dead letter
        ++refused;

        // No reply before the ack; then an error reply with the reason.
        CHECK(r.reqEnvelope == c.reqEnvelope);
        rig.ack(batch);
        auto frames = dealer.receive();
        REQUIRE(frames.size() == (c.reqEnvelope ? 2u : 1u));
        CHECK(frames.front().empty() == c.reqEnvelope);
        Json reply = Json::parse(frames.back());
        CHECK(reply["status"] == "error");
        CHECK(reply["reason"] == "bad_request");
        CHECK_THAT(reply["message"].get<std::string>(), Contains(c.message));
        CHECK_FALSE(reply.contains("producer"));
    }
    CHECK(rig.stats.badRequests.load() == refused);

    // The body kept for the dead letter is its first deadLetterInputBytes bytes.
    dealer.sendFrames({"{}", body});
    Batch batch = rig.pop();
    CHECK(batch.requests[0].payload.view() == body.substr(0, 16));
    CHECK(batch.requests[0].wireBytes == body.size());
    rig.ack(batch);
    dealer.reply();
}

TEST_CASE("receiver: an oversized message is refused, and is not remembered as applied", "[ingest][receiver]")
{
    Rig rig(routerOptions());
    Dealer dealer(rig.endpoint);
    const std::string big(6000, 'x');  // over maxMessageBytes (4096), under ZeroMQ's cut-off (twice that)
    dealer.send("p", 3, big);
    Batch batch = rig.pop();
    REQUIRE(batch.requests.size() == 1);
    const Request& r = batch.requests[0];
    CHECK(r.state == RequestState::kRejected);
    CHECK(r.rejectReason == Reason::kTooLarge);
    CHECK(r.rejectMessage == "message is 6000 bytes; the limit is 4096");
    CHECK(r.producer == "p");
    CHECK(r.seq == 3);
    CHECK(r.wireBytes == 6000);
    CHECK(r.payload.size() == 16);
    CHECK(batch.bytes == 16);
    rig.ack(batch);
    Json reply = dealer.reply();
    CHECK(reply["status"] == "error");
    CHECK(reply["reason"] == "too_large");
    CHECK(reply["producer"] == "p");
    CHECK(reply["seq"] == 3);
    CHECK(rig.stats.oversized.load() == 1);

    // A refused message counts every one of its lines, as the processor's received and rejected.
    std::string lines;
    for (int i = 0; i < 700; ++i)
        lines += "{\"a\":1}\n\n";
    dealer.send("p", 5, lines);
    Batch many = rig.pop();
    REQUIRE(many.requests.size() == 1);
    CHECK(many.requests[0].state == RequestState::kRejected);
    CHECK(many.requests[0].events == 700);
    rig.ack(many);
    CHECK(dealer.reply()["reason"] == "too_large");

    // A resend of the same sequence number that fits is new: the refused one was never applied.
    dealer.send("p", 3, kTwoEvents);
    Batch again = rig.pop();
    CHECK(again.requests[0].state == RequestState::kNew);
    rig.ack(again, 2);
    CHECK(dealer.reply()["accepted"] == 2);

    // Exactly at the limit is accepted.
    std::string edgeBody = "{}";
    edgeBody.resize(4096, ' ');
    dealer.send("p", 4, edgeBody);
    Batch edge = rig.pop();
    CHECK(edge.requests[0].state == RequestState::kNew);
    rig.ack(edge);
    dealer.reply();
}

TEST_CASE("receiver: PULL messages are fire-and-forget requests", "[ingest][receiver]")
{
    Options o = routerOptions();
    o.router.clear();
    o.pull = {"tcp://127.0.0.1:0"};
    Rig rig(o);
    zmq::context_t context{1};
    zmq::socket_t push{context, zmq::socket_type::push};
    push.set(zmq::sockopt::linger, 0);
    push.connect(rig.endpoint);
    REQUIRE(push.send(zmq::buffer(std::string("")), zmq::send_flags::none).has_value());  // empty: skipped
    REQUIRE(push.send(zmq::buffer(std::string("\n \n")), zmq::send_flags::none).has_value());  // blank: skipped
    REQUIRE(push.send(zmq::buffer(kTwoEvents), zmq::send_flags::none).has_value());
    REQUIRE(push.send(zmq::buffer(std::string(5000, 'y')), zmq::send_flags::none).has_value());

    Batch a = rig.pop();
    REQUIRE(a.requests.size() == 1);
    CHECK(a.requests[0].mode == RequestMode::kFireAndForget);
    CHECK(a.requests[0].state == RequestState::kNew);
    CHECK(a.requests[0].payload.view() == kTwoEvents);
    CHECK(a.requests[0].events == 2);
    CHECK(a.requests[0].routingId.empty());
    Batch b = rig.pop();
    REQUIRE(b.requests.size() == 1);
    CHECK(b.requests[0].state == RequestState::kRejected);
    CHECK(b.requests[0].rejectReason == Reason::kTooLarge);
    CHECK(b.requests[0].wireBytes == 5000);
    CHECK(rig.stats.messages.load() == 4);
    CHECK(rig.out.size() == 0);
    CHECK(a.id + 1 == b.id);
}

TEST_CASE("receiver: drain closes the open batch and the queue, and still sends replies", "[ingest][receiver]")
{
    Options o = routerOptions();
    o.batch.maxEvents = 1000;  // with the manual clock this batch only closes on drain
    Rig rig(o);
    Dealer dealer(rig.endpoint);
    dealer.send("p", 1, kTwoEvents);
    REQUIRE(waitFor([&] { return rig.stats.messages.load() == 1; }));
    // The open batch is handed on as it fills: its first part, not final.
    Batch batch = rig.pop();
    CHECK(batch.first);
    CHECK_FALSE(batch.final);
    CHECK(batch.requests.size() == 1);

    rig.receiver.requestDrain();
    Batch last = rig.pop();
    CHECK(last.id == batch.id);
    CHECK_FALSE(last.first);
    CHECK(last.final);
    CHECK(last.closeReason == CloseReason::kDrain);
    CHECK(last.requests.empty());
    REQUIRE(waitFor([&] { return rig.out.closed(); }));
    CHECK_FALSE(rig.out.popFor(0ms).has_value());

    // The writer commits what was handed on; its replies still go out while draining.
    rig.ack(batch, 2);
    Json reply = dealer.reply();
    CHECK(reply["accepted"] == 2);
    // A request sent now is not read.
    dealer.send("p", 2, kTwoEvents);
    rig.acks.close();
    rig.receiver.join();
    CHECK(rig.stats.messages.load() == 1);
}

TEST_CASE("receiver: an open batch is handed on in parts only once they are worth a hand-off",
          "[ingest][receiver]")
{
    Options o = routerOptions();
    o.batch.maxEvents = 1000;  // with the manual clock this batch closes only when cut
    o.batch.minPartEvents = 5;
    Rig rig(o);
    Dealer dealer(rig.endpoint);
    dealer.send("p", 1, kTwoEvents);
    dealer.send("p", 2, kTwoEvents);
    REQUIRE(waitFor([&] { return rig.stats.messages.load() == 2; }));
    // Four events, below the five a part needs: nothing is handed on yet.
    CHECK_FALSE(rig.out.popFor(50ms).has_value());
    dealer.send("p", 3, kTwoEvents);
    Batch part = rig.pop();
    CHECK(part.first);
    CHECK_FALSE(part.final);
    CHECK(part.requests.size() == 3);
    CHECK(part.events == 6);

    // A request that stays below the bound goes with the close, in the final part, and the
    // close accounts for the waits of all three requests.
    dealer.send("p", 4, kTwoEvents);
    REQUIRE(waitFor([&] { return rig.stats.messages.load() == 4; }));
    CHECK_FALSE(rig.out.popFor(50ms).has_value());
    rig.receiver.cutBatch();
    Batch last = rig.pop();
    CHECK(last.id == part.id);
    CHECK(last.final);
    REQUIRE(last.requests.size() == 1);
    CHECK(last.requests[0].seq == 4);
    CHECK(last.batchRequests == 4);
    rig.receiver.requestDrain();
    rig.acks.close();
    rig.receiver.join();
}

TEST_CASE("receiver: cutBatch closes the open batch; what is read after it starts the next batch",
          "[ingest][receiver]")
{
    Options o = routerOptions();
    o.batch.maxEvents = 1000;  // with the manual clock this batch closes only when cut
    Rig rig(o);
    Dealer dealer(rig.endpoint);
    dealer.send("p", 1, kTwoEvents);
    REQUIRE(waitFor([&] { return rig.stats.messages.load() == 1; }));
    Batch first = rig.pop();
    CHECK(first.first);
    CHECK_FALSE(first.final);

    rig.receiver.cutBatch();  // returns once the batch is closed
    Batch last = rig.pop();
    CHECK(last.id == first.id);
    CHECK(last.final);
    CHECK(last.closeReason == CloseReason::kReload);
    CHECK(last.requests.empty());

    dealer.send("p", 2, kTwoEvents);
    Batch next = rig.pop();
    CHECK(next.id == first.id + 1);
    CHECK(next.first);
    REQUIRE(next.requests.size() == 1);
    CHECK(next.requests[0].seq == 2);

    // A second cut closes that one; with no batch open a third changes nothing; after the thread
    // has ended a cut returns at once.
    rig.receiver.cutBatch();
    Batch nextEnd = rig.pop();
    CHECK(nextEnd.id == next.id);
    CHECK(nextEnd.final);
    rig.receiver.cutBatch();
    CHECK_FALSE(rig.out.popFor(50ms).has_value());
    rig.receiver.requestDrain();
    rig.acks.close();
    rig.receiver.join();
    rig.receiver.cutBatch();
}

TEST_CASE("receiver: with close_when_idle a batch closes as soon as every batch before it is durable",
          "[ingest][receiver]")
{
    Options o = routerOptions();
    o.batch.maxEvents = 1000;  // with the manual clock neither size nor delay closes a batch
    o.batch.closeWhenIdle = true;
    Rig rig(o);
    Dealer dealer(rig.endpoint);
    dealer.send("p", 1, kTwoEvents);
    // Nothing before it: the batch closes at once, whole.
    Batch first = rig.pop();
    CHECK(first.id == 100);
    CHECK(first.first);
    CHECK(first.final);
    CHECK(first.closeReason == CloseReason::kIdle);
    REQUIRE(first.requests.size() == 1);

    // Batch 100 is not durable yet: the next one stays open (handed on in parts) ...
    dealer.send("p", 2, kTwoEvents);
    Batch part = rig.pop();
    CHECK(part.id == 101);
    CHECK(part.first);
    CHECK_FALSE(part.final);
    CHECK_FALSE(rig.out.popFor(50ms).has_value());
    // ... until the writer reports batch 100 durable.
    rig.ack(first);
    CHECK(dealer.reply()["seq"] == 1);
    Batch end = rig.pop();
    CHECK(end.id == 101);
    CHECK(end.final);
    CHECK(end.closeReason == CloseReason::kIdle);
}

TEST_CASE("receiver: a bad endpoint fails start()", "[ingest][receiver]")
{
    ManualClock clock;
    BoundedQueue<Batch> out(1);
    AckChannel acks;
    IngestStats stats;
    Options o = routerOptions();
    o.router = {"tcp://256.1.2.3:1"};
    Receiver receiver(o, clock, DedupeIndex(64), 1, out, acks, stats);
    Status s = receiver.start();
    CHECK_FALSE(s.isOk());
    CHECK(s.code() == StatusCode::kUnavailable);
    CHECK_THAT(s.message(), Contains("cannot bind ingest endpoint"));
    CHECK(receiver.boundEndpoints().empty());
}

TEST_CASE("receiver: with the output queue full it stops reading; the DEALER stalls, nothing is lost",
          "[ingest][receiver][backpressure]")
{
    Options o = routerOptions();
    o.receiveHwm = 2;
    o.maxMessageBytes = 64 * 1024;
    Rig rig(o, 1);  // one batch fits in the queue
    Dealer dealer(rig.endpoint, 2);
    const std::string body(16 * 1024, 'z');

    // Request 0 fills the queue; request 1 closes a batch that cannot be handed on, and the
    // receiver stops reading.
    dealer.send("bp", 0, body);
    dealer.send("bp", 1, body);
    REQUIRE(waitFor([&] { return rig.stats.messages.load() == 2; }));
    REQUIRE(rig.out.size() == 1);

    // The DEALER sends until ZeroMQ refuses more. A send that cannot go through stays with the
    // producer (EAGAIN): DEALER never drops at the high-water mark. "Stalled" = still not
    // writable after a wait that is ample for loopback (if the wait were too short the loop would
    // just go on: the assertions below hold either way).
    uint64_t next = 2;
    bool stalled = false;
    while (!stalled && next < 5000) {
        auto sent = dealer.socket.send(zmq::buffer(Dealer::header("bp", next)),
                                       zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        if (sent) {
            REQUIRE(dealer.socket.send(zmq::buffer(body), zmq::send_flags::none).has_value());
            ++next;
            continue;
        }
        std::vector<zmq::pollitem_t> items = {{dealer.socket.handle(), 0, ZMQ_POLLOUT, 0}};
        zmq::poll(items, 500ms);
        stalled = !(items[0].revents & ZMQ_POLLOUT);
    }
    INFO("requests the DEALER could send: " << next);
    REQUIRE(stalled);
    // While the queue stays full the receiver has read nothing more.
    CHECK(rig.stats.messages.load() == 2);
    CHECK(rig.out.size() == 1);
    // Time passing now is time paused by backpressure. The receiver spends nearly all of a turn
    // in its poll, where the pause is counted; of two steps taken apart, one lands there.
    for (int step = 0; step < 2; ++step) {
        rig.clock.advanceMs(1000);
        std::this_thread::sleep_for(50ms);
    }

    // The pipeline catches up: every request arrives, once, in order.
    std::vector<uint64_t> seqs;
    while (seqs.size() < next) {
        Batch b = rig.pop();
        for (const Request& r : b.requests) {
            CHECK(r.state == RequestState::kNew);
            CHECK(r.payload.size() == body.size());
            seqs.push_back(r.seq);
        }
    }
    for (uint64_t i = 0; i < next; ++i)
        REQUIRE(seqs[i] == i);
    CHECK(rig.stats.messages.load() == next);
    CHECK(rig.stats.pausedNs.load() >= 1'000'000'000);
}

TEST_CASE("receiver: refused envelopes also stop the reading while the queue is full",
          "[ingest][receiver][backpressure]")
{
    // Same set-up, but what arrives while the receiver is paused are malformed requests. Each one
    // closes a batch (max_events = 1), so after the queue frees one slot the receiver must read
    // exactly one of them and stop again, as it does for well-formed requests.
    Rig rig(routerOptions(), 1);
    Dealer dealer(rig.endpoint);
    dealer.send("bp", 0, kTwoEvents);
    dealer.send("bp", 1, kTwoEvents);
    REQUIRE(waitFor([&] { return rig.stats.messages.load() == 2; }));
    for (int i = 0; i < 10; ++i)
        dealer.sendFrames({"not a header", kTwoEvents});
    std::this_thread::sleep_for(300ms);  // let them reach the receiver's socket (not an assertion)
    CHECK(rig.stats.messages.load() == 2);

    Batch first = rig.pop();  // frees the slot: batch 1 moves up, the receiver reads one more
    CHECK(first.requests[0].seq == 0);
    REQUIRE(waitFor([&] { return rig.stats.messages.load() >= 3; }));
    std::this_thread::sleep_for(300ms);  // had it gone on reading, it would have by now
    CHECK(rig.stats.messages.load() == 3);

    // Everything still arrives.
    size_t refused = 0;
    Batch second = rig.pop();
    CHECK(second.requests[0].seq == 1);
    while (refused < 10) {
        Batch b = rig.pop();
        CHECK(b.requests[0].state == RequestState::kRejected);
        ++refused;
    }
    CHECK(rig.stats.badRequests.load() == 10);
}
