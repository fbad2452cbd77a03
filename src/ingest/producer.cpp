#include "ingest/producer.h"

#include <zmq.hpp>

#include "core/encoding.h"
#include "core/wipe.h"

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

namespace sluice::ingest {

std::string curvePublicKeyOf(const std::string& secretKey)
{
    if (secretKey.size() != 32)
        return {};
    std::string secretZ85 = toZ85(secretKey);
    char publicZ85[41] = {};
    const int rc = zmq_curve_public(publicZ85, secretZ85.c_str());
    wipe(secretZ85);
    if (rc != 0)
        return {};
    return fromZ85(std::string_view(publicZ85, 40)).value_or(std::string());
}

Result<CurveKeyPair> newCurveKeyPair()
{
    char publicZ85[41] = {};
    char secretZ85[41] = {};
    if (zmq_curve_keypair(publicZ85, secretZ85) != 0)
        return Status::error(StatusCode::kUnavailable, "this libzmq has no CURVE support");
    CurveKeyPair pair;
    pair.publicKey = fromZ85(std::string_view(publicZ85, 40)).value_or(std::string());
    pair.secretKey = fromZ85(std::string_view(secretZ85, 40)).value_or(std::string());
    explicit_bzero(secretZ85, sizeof secretZ85);
    return pair;
}

namespace {

// Throws zmq::error_t like the other socket calls; a bad key is an invalid-argument error.
void applyCurve(zmq::socket_t& socket, const CurveClient& curve)
{
    if (!curve.on())
        return;
    const std::string publicKey = curvePublicKeyOf(curve.secretKey);
    if (curve.serverPublicKey.size() != 32 || publicKey.size() != 32)
        throw zmq::error_t();
    socket.set(zmq::sockopt::curve_serverkey, zmq::const_buffer(curve.serverPublicKey.data(), 32));
    socket.set(zmq::sockopt::curve_publickey, zmq::const_buffer(publicKey.data(), 32));
    socket.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(curve.secretKey.data(), 32));
}

int64_t monoNs()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::string randomProducerId()
{
    std::random_device rd;
    std::mt19937_64 gen((uint64_t{rd()} << 32) ^ rd());
    char buf[40];
    std::snprintf(buf, sizeof buf, "producer-%016llx", static_cast<unsigned long long>(gen()));
    return buf;
}

}  // namespace

Result<Reply> parseReply(std::string_view frame)
{
    auto j = nlohmann::json::parse(frame, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("status"))
        return Status::corruption("a reply that is not a JSON object with a status");
    Reply r;
    if (j.contains("seq") && j["seq"].is_number_unsigned())
        r.seq = j["seq"].get<uint64_t>();
    const std::string status = j["status"].is_string() ? j["status"].get<std::string>() : "";
    r.ok = status == "ok";
    r.duplicate = j.value("duplicate", false);
    r.accepted = j.value("accepted", 0u);
    r.rejected = j.value("rejected", 0u);
    if (j.contains("errors") && j["errors"].is_array()) {
        for (const auto& e : j["errors"]) {
            auto reason = reasonFromCode(e.value("reason", std::string()));
            r.errors.emplace_back(e.value("index", 0u), reason.value_or(Reason::kBadRequest));
        }
    }
    if (!r.ok) {
        r.errorReason = j.value("reason", std::string("unknown"));
        r.errorMessage = j.value("message", std::string());
    }
    return r;
}

struct AckProducer::Impl {
    struct Pending {
        std::string body;
        uint32_t events = 0;
        int64_t firstSentNs = 0;
        int64_t deadlineNs = 0;
        int64_t backoffMs = 0;
        uint32_t sends = 0;
    };

    Options options;
    zmq::context_t context{1};
    zmq::socket_t socket{context, zmq::socket_type::dealer};
    uint64_t nextSeq = 1;
    std::map<uint64_t, Pending> pending;
    ProducerReport report;

    void transmit(uint64_t seq, Pending& p)
    {
        const std::string header =
            "{\"producer\":" + nlohmann::json(options.producerId).dump() + ",\"seq\":" + std::to_string(seq) + "}";
        // Never blocks: with no connected daemon (down, or refusing our CURVE key) the request
        // stays pending and goes again at its deadline, so --give-up still ends the wait. Once a
        // first frame is queued, ZeroMQ takes the rest of the message.
        if (socket.send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
            socket.send(zmq::buffer(p.body), zmq::send_flags::none);
        ++p.sends;
        p.deadlineNs = monoNs() + p.backoffMs * 1'000'000;
    }

    // Serves replies and resends until `untilNs`, or until a reply arrives when `returnOnReply`.
    void serve(int64_t untilNs, bool returnOnReply)
    {
        for (;;) {
            const int64_t now = monoNs();
            int64_t next = untilNs;
            for (auto it = pending.begin(); it != pending.end();) {
                Pending& p = it->second;
                if (options.giveUpMs > 0 && now - p.firstSentNs >= options.giveUpMs * 1'000'000) {
                    ++report.unanswered;
                    it = pending.erase(it);
                    continue;
                }
                if (p.deadlineNs <= now) {
                    ++report.retries;
                    // Never shorter than the first wait: a timeout above the cap stays as it is.
                    p.backoffMs = std::min(p.backoffMs * 2, std::max(options.maxBackoffMs, options.timeoutMs));
                    transmit(it->first, p);
                }
                next = std::min(next, p.deadlineNs);
                ++it;
            }
            const bool got = receiveAll();
            if ((got && returnOnReply) || pending.empty() || monoNs() >= untilNs)
                return;
            zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
            const int64_t waitMs = std::max<int64_t>(0, (std::min(next, untilNs) - monoNs() + 999'999) / 1'000'000);
            zmq::poll(&item, 1, std::chrono::milliseconds(std::min<int64_t>(waitMs, 1000)));
        }
    }

    // Takes every reply already waiting; true when at least one settled a request.
    bool receiveAll()
    {
        bool got = false;
        zmq::message_t msg;
        while (socket.recv(msg, zmq::recv_flags::dontwait)) {
            while (msg.more())  // a REQ-style empty delimiter precedes the reply: keep the last frame
                if (!socket.recv(msg, zmq::recv_flags::none))
                    break;
            auto reply = parseReply(std::string_view(static_cast<const char*>(msg.data()), msg.size()));
            if (!reply)
                continue;
            auto it = pending.find(reply->seq);
            if (it == pending.end())
                continue;  // the answer to an earlier attempt of a request already settled
            reply->latencyNs = monoNs() - it->second.firstSentNs;
            if (reply->ok) {
                ++report.acknowledged;
                report.duplicateReplies += reply->duplicate ? 1 : 0;
                if (reply->duplicate && it->second.sends <= 1) {
                    ++report.duplicateRequests;
                    report.duplicateEvents += it->second.events;
                } else {
                    report.accepted += reply->accepted;
                    report.rejected += reply->rejected;
                    for (const auto& [index, reason] : reply->errors)
                        ++report.byReason[static_cast<size_t>(reason)];
                }
            } else {
                ++report.failed;
                report.rejected += it->second.events;
                if (auto reason = reasonFromCode(reply->errorReason))
                    report.byReason[static_cast<size_t>(*reason)] += it->second.events;
            }
            if (options.onReply)
                options.onReply(*reply);
            pending.erase(it);
            got = true;
        }
        return got;
    }
};

AckProducer::AckProducer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AckProducer::~AckProducer() = default;

Result<std::unique_ptr<AckProducer>> AckProducer::connect(Options options)
{
    auto impl = std::make_unique<Impl>();
    if (options.producerId.empty())
        options.producerId = randomProducerId();
    impl->nextSeq = options.firstSeq;
    impl->options = std::move(options);
    try {
        impl->socket.set(zmq::sockopt::linger, 0);
        impl->socket.set(zmq::sockopt::sndhwm, 100'000);
        impl->socket.set(zmq::sockopt::rcvhwm, 100'000);
        applyCurve(impl->socket, impl->options.curve);
        impl->socket.connect(impl->options.endpoint);
    } catch (const zmq::error_t& e) {
        return Status::invalid("cannot connect to " + impl->options.endpoint + ": " + e.what());
    }
    return std::unique_ptr<AckProducer>(new AckProducer(std::move(impl)));
}

Result<uint64_t> AckProducer::send(std::string body, uint32_t events)
{
    Impl& m = *impl_;
    while (m.pending.size() >= m.options.window)
        m.serve(INT64_MAX, true);
    const uint64_t seq = m.nextSeq++;
    Impl::Pending& p = m.pending[seq];
    p.body = std::move(body);
    p.events = events;
    p.firstSentNs = monoNs();
    p.backoffMs = m.options.timeoutMs;
    ++m.report.requests;
    m.report.events += events;
    try {
        m.transmit(seq, p);
    } catch (const zmq::error_t& e) {
        return Status::ioError(std::string("send failed: ") + e.what());
    }
    m.serve(0, false);  // take replies already waiting
    return seq;
}

Status AckProducer::flush()
{
    try {
        impl_->serve(INT64_MAX, false);
    } catch (const zmq::error_t& e) {
        return Status::ioError(std::string("receive failed: ") + e.what());
    }
    return Status::ok();
}

Status AckProducer::serveUntil(int64_t deadlineNs)
{
    try {
        impl_->serve(deadlineNs, false);
    } catch (const zmq::error_t& e) {
        return Status::ioError(std::string("receive failed: ") + e.what());
    }
    const int64_t now = monoNs();
    if (impl_->pending.empty() && now < deadlineNs)
        std::this_thread::sleep_for(std::chrono::nanoseconds(deadlineNs - now));
    return Status::ok();
}

const std::string& AckProducer::producerId() const { return impl_->options.producerId; }
const ProducerReport& AckProducer::report() const { return impl_->report; }
size_t AckProducer::inFlight() const { return impl_->pending.size(); }

struct PushProducer::Impl {
    zmq::context_t context{1};
    zmq::socket_t socket{context, zmq::socket_type::push};
};

PushProducer::PushProducer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PushProducer::~PushProducer() = default;

Result<std::unique_ptr<PushProducer>> PushProducer::connect(const std::string& endpoint, int sendHwm,
                                                            const CurveClient& curve)
{
    auto impl = std::make_unique<Impl>();
    try {
        impl->socket.set(zmq::sockopt::sndhwm, sendHwm);
        applyCurve(impl->socket, curve);
        impl->socket.connect(endpoint);
    } catch (const zmq::error_t& e) {
        return Status::invalid("cannot connect to " + endpoint + ": " + e.what());
    }
    return std::unique_ptr<PushProducer>(new PushProducer(std::move(impl)));
}

Status PushProducer::send(const std::string& body)
{
    try {
        impl_->socket.send(zmq::buffer(body), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
        return Status::ioError(std::string("send failed: ") + e.what());
    }
    return Status::ok();
}

void PushProducer::close(int lingerMs)
{
    impl_->socket.set(zmq::sockopt::linger, lingerMs);
    impl_->socket.close();
}

}  // namespace sluice::ingest
