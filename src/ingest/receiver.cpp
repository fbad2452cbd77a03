#include "ingest/receiver.h"

#include <zmq.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "core/thread_name.h"
#include "core/encoding.h"
#include "core/log.h"
#include "core/wipe.h"
#include "ingest/protocol.h"

namespace sluice::ingest {
namespace {

// Messages read per socket per loop turn: enough to amortise polling, small enough that acks
// and batch deadlines are served promptly.
constexpr int kReadsPerTurn = 256;
// While the pipeline is full the loop re-checks this often.
constexpr auto kBackoff = std::chrono::milliseconds(1);
constexpr auto kIdlePoll = std::chrono::milliseconds(100);
constexpr int64_t kPollStepNs = 1'000'000;  // zmq_poll's unit of time

}  // namespace

struct Receiver::Impl {
    Impl(Options o, const Clock& c, DedupeIndex d, uint64_t firstBatchId, BoundedQueue<Batch>& q, AckChannel& a,
         IngestStats& s)
        : options(std::move(o)),
          clock(c),
          dedupe(std::move(d)),
          out(q),
          acks(a),
          stats(s),
          batcher(options.batch, clock, firstBatchId, [this](Batch&& b) { ready.push_back(std::move(b)); }),
          lastDurable(firstBatchId - 1)
    {
    }

    Options options;
    const Clock& clock;
    DedupeIndex dedupe;
    BoundedQueue<Batch>& out;
    AckChannel& acks;
    IngestStats& stats;
    batch::Batcher batcher;
    std::deque<Batch> ready;
    uint64_t lastDurable;  // the last batch the writer reported durable (AckChannel)
    std::function<void()> beat;

    zmq::context_t context{1};
    std::optional<zmq::socket_t> zap;  // CURVE only: the ZAP handler's REP socket
    std::set<std::string> refusedKeys;  // logged once each
    std::vector<zmq::socket_t> pulls;
    std::vector<zmq::socket_t> routers;
    std::vector<std::string> bound;
    std::thread thread;
    std::atomic<bool> drainRequested{false};
    // cutBatch(): requests and completions, counted, under cutMutex; cutPending for the loop.
    std::mutex cutMutex;
    std::condition_variable cutDone;
    uint64_t cutsRequested = 0;
    uint64_t cutsDone = 0;
    bool looping = false;
    std::atomic<bool> cutPending{false};

    Status bind();
    void run();
    void loop();
    void pushReady();
    void readPull(zmq::socket_t& socket);
    void readRouter(zmq::socket_t& socket);
    void sendReplies(std::vector<AckBatch>& batches);
    void rejectRequest(Request& r, Reason reason, std::string message, std::string_view body);
    void configure(zmq::socket_t& socket);
    void answerZap();
};

Receiver::Receiver(Options options, const Clock& clock, DedupeIndex dedupe, uint64_t firstBatchId,
                   BoundedQueue<Batch>& out, AckChannel& acks, IngestStats& stats)
    : impl_(std::make_unique<Impl>(std::move(options), clock, std::move(dedupe), firstBatchId, out, acks, stats))
{
}

Receiver::~Receiver()
{
    if (impl_->thread.joinable()) {
        requestDrain();
        impl_->thread.join();
    }
}

void Receiver::setHeartbeat(std::function<void()> beat) { impl_->beat = std::move(beat); }

std::vector<std::string> Receiver::boundEndpoints() const { return impl_->bound; }

void Receiver::requestDrain() { impl_->drainRequested = true; }

void Receiver::cutBatch()
{
    Impl& m = *impl_;
    std::unique_lock lock(m.cutMutex);
    if (!m.looping)
        return;
    const uint64_t ticket = ++m.cutsRequested;
    m.cutPending = true;
    m.cutDone.wait(lock, [&] { return m.cutsDone >= ticket || !m.looping; });
}

void Receiver::join()
{
    if (impl_->thread.joinable())
        impl_->thread.join();
}

Status Receiver::start()
{
    std::promise<Status> bound;
    auto result = bound.get_future();
    impl_->thread = std::thread([this, &bound] {
        nameThisThread("sluice-ingest");
        Status s = impl_->bind();
        bool ok = s.isOk();
        if (ok) {
            std::lock_guard lock(impl_->cutMutex);
            impl_->looping = true;  // before start() returns: a cutBatch() from now on is served
        }
        bound.set_value(std::move(s));
        if (ok)
            impl_->run();
    });
    Status s = result.get();
    if (!s) {
        impl_->thread.join();
        return s;
    }
    return Status::ok();
}

void Receiver::Impl::configure(zmq::socket_t& socket)
{
    socket.set(zmq::sockopt::rcvhwm, options.receiveHwm);
    socket.set(zmq::sockopt::sndhwm, options.sendHwm);
    // libzmq drops the connection of a peer sending more than this; up to it, an oversized
    // message is refused with a dead letter and, when acknowledged, a reply saying why.
    socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.maxMessageBytes * 2));
    socket.set(zmq::sockopt::handshake_ivl, static_cast<int>(options.handshakeIvlMs));
    socket.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(options.heartbeatIvlMs));
    socket.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(options.heartbeatTimeoutMs));
    // Replies still queued when the daemon stops get this long to leave.
    socket.set(zmq::sockopt::linger, 2000);
    if (!options.curveSecretKey.empty()) {
        socket.set(zmq::sockopt::curve_server, true);
        socket.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(options.curveSecretKey.data(), 32));
        socket.set(zmq::sockopt::zap_domain, "sluice");
    }
}

// One ZAP request (RFC 27): version, request id, domain, address, identity, mechanism,
// credentials. Only CURVE clients whose public key is on the list get "200".
void Receiver::Impl::answerZap()
{
    std::vector<zmq::message_t> frames;
    do {
        zmq::message_t frame;
        if (!zap->recv(frame, zmq::recv_flags::dontwait))
            return;
        frames.push_back(std::move(frame));
    } while (frames.back().more());
    if (frames.size() < 6)
        return;  // not a ZAP request; libzmq never sends one
    const std::string mechanism = frames[5].to_string();
    const std::string clientKey = frames.size() > 6 ? frames[6].to_string() : std::string();
    const bool allowed = mechanism == "CURVE" && clientKey.size() == 32 &&
                         std::find(options.curveClients.begin(), options.curveClients.end(), clientKey) !=
                             options.curveClients.end();
    if (!allowed) {
        stats.curveRefused.fetch_add(1, std::memory_order_relaxed);
        const std::string shown = clientKey.size() == 32 ? toZ85(clientKey) : mechanism;
        if (refusedKeys.size() < 1024 && refusedKeys.insert(shown).second)
            log::warning("refused a producer from ", frames[3].to_string(), ": CURVE key ", shown,
                         " is not in ingest.curve_clients_file");
    }
    const std::string status = allowed ? "200" : "400";
    zap->send(zmq::buffer(std::string_view("1.0")), zmq::send_flags::sndmore);
    zap->send(frames[1], zmq::send_flags::sndmore);
    zap->send(zmq::buffer(status), zmq::send_flags::sndmore);
    zap->send(zmq::buffer(std::string_view(allowed ? "OK" : "client key not allowed")), zmq::send_flags::sndmore);
    zap->send(zmq::buffer(std::string_view("")), zmq::send_flags::sndmore);
    zap->send(zmq::buffer(std::string_view("")), zmq::send_flags::none);
}

Status Receiver::Impl::bind()
{
    try {
        if (!options.curveSecretKey.empty()) {
            // Bound before any ingest socket: no handshake can happen without the handler.
            zap.emplace(context, zmq::socket_type::rep);
            zap->set(zmq::sockopt::linger, 0);
            zap->bind("inproc://zeromq.zap.01");
        }
        for (const std::string& endpoint : options.pull) {
            zmq::socket_t s(context, zmq::socket_type::pull);
            configure(s);
            s.bind(endpoint);
            bound.push_back(s.get(zmq::sockopt::last_endpoint));
            pulls.push_back(std::move(s));
        }
        for (const std::string& endpoint : options.router) {
            zmq::socket_t s(context, zmq::socket_type::router);
            configure(s);
            // A reply to a producer that has gone away fails instead of vanishing silently.
            s.set(zmq::sockopt::router_mandatory, true);
            s.bind(endpoint);
            bound.push_back(s.get(zmq::sockopt::last_endpoint));
            routers.push_back(std::move(s));
        }
    } catch (const zmq::error_t& e) {
        pulls.clear();
        routers.clear();
        zap.reset();
        wipe(options.curveSecretKey);
        return Status::error(StatusCode::kUnavailable, std::string("cannot bind ingest endpoint: ") + e.what());
    }
    wipe(options.curveSecretKey);  // libzmq has its own copy in each socket now
    return Status::ok();
}

void Receiver::Impl::run()
{
    try {
        loop();
    } catch (const std::exception& e) {
        log::error("ingest thread failed: ", e.what());
        out.close();
    }
    {
        std::lock_guard lock(cutMutex);
        looping = false;
        cutDone.notify_all();
    }
    pulls.clear();
    routers.clear();
}

void Receiver::Impl::pushReady()
{
    while (!ready.empty()) {
        const bool final = ready.front().final;
        const uint64_t requests = ready.front().batchRequests;
        const int64_t closeWaitNs = ready.front().closeWaitNs;
        if (!out.tryPush(std::move(ready.front())))
            return;
        ready.pop_front();
        if (final) {
            stats.batchesClosed.fetch_add(1, std::memory_order_relaxed);
            stats.closedRequests.fetch_add(requests, std::memory_order_relaxed);
            stats.closeWaitNs.fetch_add(closeWaitNs, std::memory_order_relaxed);
        }
    }
}

void Receiver::Impl::loop()
{
    bool draining = false;
    bool inputClosed = false;
    bool acksClosed = false;
    int64_t lastForgetMs = clock.wallMs();
    std::vector<zmq::pollitem_t> items;
    int64_t turnStart = clock.monoNs();
    while (true) {
        if (beat)
            beat();
        // Producers silent for longer than the retention are forgotten (their marks, in the
        // database, are pruned by the writer's maintenance on the same schedule).
        if (const int64_t now = clock.wallMs(); now - lastForgetMs >= 60'000) {
            lastForgetMs = now;
            if (size_t n = dedupe.forgetIdle(now - options.dedupeRetentionMs))
                log::info("forgot ", n, " producer(s) silent for longer than the dedupe retention");
        }
        if (drainRequested && !draining) {
            draining = true;
            batcher.flush();
        }
        if (cutPending.load(std::memory_order_acquire)) {
            std::lock_guard lock(cutMutex);
            batcher.flush(CloseReason::kReload);
            cutPending = false;
            cutsDone = cutsRequested;
            cutDone.notify_all();
        }
        // zmq_poll waits whole milliseconds: rounding the wait up closed a batch up to 1 ms after
        // its deadline (0.5 ms on average, measured as close_wait); rounding it down and closing
        // within the last millisecond keeps every batch within max_delay.
        batcher.poll(kPollStepNs - 1);
        // batch.close_when_idle: every batch before the open one is durable, so nothing is
        // gained by waiting for more company.
        if (options.batch.closeWhenIdle && !batcher.empty() && ready.empty() && out.size() == 0 &&
            lastDurable + 2 >= batcher.nextBatchId())
            batcher.flush(CloseReason::kIdle);
        pushReady();
        // Work while the batch fills: whenever the processor has taken everything handed to it,
        // it gets what the open batch holds so far. A busy processor gets bigger parts later.
        if (batcher.worthReleasing() && ready.empty() && out.size() == 0) {
            batcher.release();
            pushReady();
        }
        if (draining && ready.empty() && !inputClosed) {
            out.close();  // everything read has been handed on
            inputClosed = true;
        }
        const bool reading = !draining && ready.empty();

        items.clear();
        items.push_back({nullptr, acks.fd(), ZMQ_POLLIN, 0});
        if (zap)
            items.push_back({zap->handle(), 0, ZMQ_POLLIN, 0});
        if (reading) {
            for (auto& s : pulls)
                items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
            for (auto& s : routers)
                items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
        }
        std::chrono::milliseconds timeout = kIdlePoll;
        if (!ready.empty() || batcher.worthReleasing()) {
            timeout = kBackoff;  // the queue may have room soon
        } else if (int64_t ns = batcher.nanosUntilDeadline(); ns >= 0) {
            timeout = std::min(timeout, std::chrono::milliseconds(ns / kPollStepNs));
        }
        const int64_t pollStart = clock.monoNs();
        stats.busyNs.fetch_add(pollStart - turnStart, std::memory_order_relaxed);
        zmq::poll(items, timeout);
        turnStart = clock.monoNs();
        if (!ready.empty())
            stats.pausedNs.fetch_add(turnStart - pollStart, std::memory_order_relaxed);

        if (items[0].revents & ZMQ_POLLIN) {
            auto batches = acks.takeAll(&acksClosed);
            sendReplies(batches);
        }
        size_t i = 1;
        if (zap && (items[i++].revents & ZMQ_POLLIN)) {
            for (int n = 0; n < kReadsPerTurn; ++n)
                answerZap();
        }
        if (reading) {
            for (auto& s : pulls)
                if (items[i++].revents & ZMQ_POLLIN)
                    readPull(s);
            for (auto& s : routers)
                if (items[i++].revents & ZMQ_POLLIN)
                    readRouter(s);
        }
        if (acksClosed) {
            auto batches = acks.takeAll(nullptr);
            sendReplies(batches);
            return;
        }
    }
}

void Receiver::Impl::rejectRequest(Request& r, Reason reason, std::string message, std::string_view body)
{
    r.state = RequestState::kRejected;
    r.rejectReason = reason;
    r.rejectMessage = std::move(message);
    r.payload = Payload(body.substr(0, options.deadLetterInputBytes));
    r.wireBytes = body.size();
    // Every line of a refused message counts as received and rejected (an empty body as one);
    // the message is stored as one dead letter.
    r.events = std::max<uint32_t>(1, countEvents(body));
}

void Receiver::Impl::readPull(zmq::socket_t& socket)
{
    zmq::message_t msg;
    for (int n = 0; n < kReadsPerTurn; ++n) {
        if (!socket.recv(msg, zmq::recv_flags::dontwait))
            return;
        const std::string_view body(static_cast<const char*>(msg.data()), msg.size());
        stats.messages.fetch_add(1, std::memory_order_relaxed);
        stats.bytes.fetch_add(body.size(), std::memory_order_relaxed);
        Request r;
        r.mode = RequestMode::kFireAndForget;
        r.receivedAtMs = clock.wallMs();
        r.receivedMonoNs = clock.monoNs();
        r.wireBytes = body.size();
        if (body.size() > options.maxMessageBytes) {
            stats.oversized.fetch_add(1, std::memory_order_relaxed);
            rejectRequest(r, Reason::kTooLarge,
                          "message is " + std::to_string(body.size()) + " bytes; the limit is " +
                              std::to_string(options.maxMessageBytes),
                          body);
        } else {
            r.events = countEvents(body);
            if (r.events == 0)
                continue;  // nothing to do for an empty message
            r.payload = Payload(body);
        }
        batcher.add(std::move(r));
        if (!ready.empty())
            return;  // the pipeline decides whether we read on
    }
}

void Receiver::Impl::readRouter(zmq::socket_t& socket)
{
    for (int n = 0; n < kReadsPerTurn; ++n) {
        zmq::message_t identity;
        if (!socket.recv(identity, zmq::recv_flags::dontwait))
            return;
        std::vector<zmq::message_t> frames;
        bool more = identity.more();
        while (more) {
            zmq::message_t part;
            if (!socket.recv(part, zmq::recv_flags::none))
                break;
            more = part.more();
            if (frames.size() < 4)
                frames.push_back(std::move(part));
            else
                frames.back() = zmq::message_t();  // too many frames: keep nothing more
        }
        Request r;
        r.mode = RequestMode::kAcknowledged;
        r.routingId.assign(static_cast<const char*>(identity.data()), identity.size());
        r.receivedAtMs = clock.wallMs();
        r.receivedMonoNs = clock.monoNs();
        stats.messages.fetch_add(1, std::memory_order_relaxed);

        size_t first = 0;
        if (!frames.empty() && frames[0].size() == 0) {
            r.reqEnvelope = true;
            first = 1;
        }
        const size_t count = frames.size() - first;
        auto view = [&](size_t i) {
            return std::string_view(static_cast<const char*>(frames[first + i].data()), frames[first + i].size());
        };
        const std::string_view body = count >= 2 ? view(1) : std::string_view();
        stats.bytes.fetch_add(body.size(), std::memory_order_relaxed);
        r.wireBytes = body.size();

        if (count != 2) {
            stats.badRequests.fetch_add(1, std::memory_order_relaxed);
            rejectRequest(r, Reason::kBadRequest,
                          "a request has two frames after the optional empty delimiter: a header and a body (got " +
                              std::to_string(count) + ")",
                          body);
            batcher.add(std::move(r));
            if (!ready.empty())
                return;  // refused requests make batches too: the pipeline decides whether we read on
            continue;
        }
        auto header = parseHeader(view(0));
        if (!header) {
            stats.badRequests.fetch_add(1, std::memory_order_relaxed);
            rejectRequest(r, Reason::kBadRequest, header.status().message(), body);
            batcher.add(std::move(r));
            if (!ready.empty())
                return;
            continue;
        }
        r.producer = std::move(header->producer);
        r.seq = header->seq;
        if (body.size() > options.maxMessageBytes) {
            // Refused before dedupe: it was never applied, so a retry is not a duplicate either.
            stats.oversized.fetch_add(1, std::memory_order_relaxed);
            rejectRequest(r, Reason::kTooLarge,
                          "message is " + std::to_string(body.size()) + " bytes; the limit is " +
                              std::to_string(options.maxMessageBytes),
                          body);
        } else {
            switch (dedupe.admit(r.producer, r.seq, r.receivedAtMs)) {
            case DedupeIndex::Verdict::kNew:
                r.events = countEvents(body);
                r.payload = Payload(body);
                break;
            case DedupeIndex::Verdict::kDuplicate:
                stats.duplicateRequests.fetch_add(1, std::memory_order_relaxed);
                r.state = RequestState::kDuplicate;
                r.events = countEvents(body);
                break;
            case DedupeIndex::Verdict::kStale:
                stats.staleRequests.fetch_add(1, std::memory_order_relaxed);
                rejectRequest(r, Reason::kBadRequest,
                              "sequence " + std::to_string(r.seq) +
                                  " is older than the window of remembered requests (from " +
                                  std::to_string(dedupe.windowStart(r.producer)) +
                                  "); it cannot be told apart from a duplicate",
                              body);
                break;
            }
        }
        batcher.add(std::move(r));
        if (!ready.empty())
            return;
    }
}

void Receiver::Impl::sendReplies(std::vector<AckBatch>& batches)
{
    for (AckBatch& batch : batches) {
        lastDurable = std::max(lastDurable, batch.batchId);
        for (RequestOutcome& o : batch.outcomes) {
            if (o.state == RequestState::kNew)
                dedupe.committed(o.producer, o.seq);
            if (routers.empty() || o.routingId.empty())
                continue;
            const std::string reply = formatReply(o);
            // Replies go out on the ROUTER that received the request; with one router (the usual
            // case) that is routers[0]. With several, try each: only the right one knows the peer.
            bool sent = false;
            for (auto& router : routers) {
                try {
                    if (!router.send(zmq::buffer(o.routingId), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
                        continue;  // high-water mark reached for this peer: the producer will retry
                    if (o.reqEnvelope)
                        router.send(zmq::message_t(), zmq::send_flags::sndmore);
                    router.send(zmq::buffer(reply), zmq::send_flags::none);
                    sent = true;
                    break;
                } catch (const zmq::error_t& e) {
                    if (e.num() != EHOSTUNREACH)
                        log::warning("cannot send a reply to producer ", o.producer, ": ", e.what());
                }
            }
            (sent ? stats.repliesSent : stats.repliesDropped).fetch_add(1, std::memory_order_relaxed);
        }
        if (batch.durableMonoNs > 0) {
            stats.replyWaitNs.fetch_add(clock.monoNs() - batch.durableMonoNs, std::memory_order_relaxed);
            stats.repliedBatches.fetch_add(1, std::memory_order_relaxed);
        }
    }
}

}  // namespace sluice::ingest
