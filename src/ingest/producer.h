// The producer side of both ingest modes, for sluicectl send, the benchmark, the demo and the
// tests. Any ZeroMQ binding can do the same from docs/protocol.md; this is ours.
//
// AckProducer keeps a window of unacknowledged requests on a DEALER socket. A request that gets
// no reply within the timeout is sent again, unchanged (same producer id and sequence number),
// with exponential back-off; the daemon answers a retry of a committed request "ok, duplicate"
// and applies it zero times, so retrying is always safe. Not thread-safe: one thread per object.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/reason.h"
#include "core/status.h"

namespace sluice::ingest {

struct Reply {
    uint64_t seq = 0;
    bool ok = false;                // status "ok"
    bool duplicate = false;
    uint32_t accepted = 0;
    uint32_t rejected = 0;
    std::vector<std::pair<uint32_t, Reason>> errors;  // (index, reason)
    std::string errorReason;        // status "error"
    std::string errorMessage;
    int64_t latencyNs = 0;          // from the first send of the request
};

// What became of the requests one producer object sent. Every event sent is counted once, in
// accepted, rejected, duplicateEvents or the events of unanswered requests. A request that
// another sender had already committed (the same producer id and seq, e.g. a second run over
// the same input) is answered "duplicate" at its first send: nothing was applied now, so it
// counts as duplicates, not as accepted. A duplicate answer to a resend of this object's own
// request means its first send was committed and that reply lost: the counts the answer
// repeats are what this object's request did, and count as accepted and rejected.
struct ProducerReport {
    uint64_t requests = 0;          // distinct requests sent
    uint64_t events = 0;            // events in them
    uint64_t acknowledged = 0;      // requests answered ok
    uint64_t failed = 0;            // requests answered status "error" (their events count as rejected)
    uint64_t duplicateRequests = 0; // requests already committed by another sender (applied zero times)
    uint64_t duplicateEvents = 0;   // events in them
    uint64_t duplicateReplies = 0;  // replies saying "duplicate", to resends of this object's requests too
    uint64_t accepted = 0;          // events accepted
    uint64_t rejected = 0;          // events rejected
    uint64_t retries = 0;           // resends after a timeout
    uint64_t unanswered = 0;        // requests given up on
    std::array<uint64_t, kReasonCount> byReason{};  // rejected events by reason
};

// CURVE for a producer: the daemon's public key and this producer's secret key, 32 bytes each
// (its public key is derived from the secret). Both empty: a plain connection.
struct CurveClient {
    std::string serverPublicKey;
    std::string secretKey;
    bool on() const { return !serverPublicKey.empty(); }
};

// The public key that belongs to a 32-byte CURVE secret key ("" if it is not one).
std::string curvePublicKeyOf(const std::string& secretKey);

// A new CURVE key pair, 32 raw bytes each (sluicectl curve-keygen). kUnavailable when this
// libzmq has no CURVE support. The caller wipes the secret when it is done with it.
struct CurveKeyPair {
    std::string publicKey;
    std::string secretKey;
};
Result<CurveKeyPair> newCurveKeyPair();

class AckProducer {
public:
    struct Options {
        std::string endpoint;
        CurveClient curve;
        std::string producerId;          // "" : a random one
        uint64_t firstSeq = 1;
        size_t window = 64;              // requests in flight
        int64_t timeoutMs = 5000;        // first resend after this long without a reply
        int64_t maxBackoffMs = 30'000;  // the doubling stops here (or at timeoutMs, if longer)
        int64_t giveUpMs = 0;            // 0: never give up on a request
        std::function<void(const Reply&)> onReply;
    };

    static Result<std::unique_ptr<AckProducer>> connect(Options options);
    ~AckProducer();

    // Sends one request (one or more NDJSON events; `events` is how many). Blocks, serving
    // replies and resends, while the window is full. Returns the sequence number used.
    Result<uint64_t> send(std::string body, uint32_t events);
    // Waits until every request is answered (or given up on).
    Status flush();
    // Serves replies and resends until `deadlineNs` (steady clock, nanoseconds since its epoch).
    Status serveUntil(int64_t deadlineNs);

    const std::string& producerId() const;
    const ProducerReport& report() const;
    size_t inFlight() const;

private:
    struct Impl;
    explicit AckProducer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Fire-and-forget: a PUSH socket. send() queues; close() waits up to `lingerMs` for delivery.
class PushProducer {
public:
    static Result<std::unique_ptr<PushProducer>> connect(const std::string& endpoint, int sendHwm = 1000,
                                                         const CurveClient& curve = {});
    ~PushProducer();
    Status send(const std::string& body);
    void close(int lingerMs);

private:
    struct Impl;
    explicit PushProducer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Parses a reply frame of the acknowledged protocol.
Result<Reply> parseReply(std::string_view frame);

}  // namespace sluice::ingest
