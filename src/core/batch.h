// What the ingest stage hands to the batcher and the batcher hands on: requests (one ZeroMQ
// message each) grouped into a Batch. A Batch owns its bytes; it moves forward through the
// pipeline (`Batch&&`) and is never shared.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/reason.h"

namespace sluice {

// A message body followed by zeroed padding, so a SIMD JSON parser may read past the end.
class Payload {
public:
    static constexpr size_t kPadding = 64;

    Payload() = default;
    explicit Payload(std::string_view bytes) : size_(bytes.size())
    {
        data_ = std::make_unique_for_overwrite<char[]>(size_ + kPadding);
        if (size_)
            std::memcpy(data_.get(), bytes.data(), size_);
        std::memset(data_.get() + size_, 0, kPadding);
    }

    const char* data() const { return data_.get(); }
    size_t size() const { return size_; }
    std::string_view view() const { return {data_.get(), size_}; }

private:
    std::unique_ptr<char[]> data_;
    size_t size_ = 0;
};

enum class RequestMode : uint8_t {
    kFireAndForget,  // from the PULL socket: nobody to answer
    kAcknowledged,   // from the ROUTER socket: answered after commit
};

// How the ingest stage classified a request before any event in it was looked at.
enum class RequestState : uint8_t {
    kNew,        // apply its events
    kDuplicate,  // (producer, seq) already committed or in flight: apply nothing, answer ok
    kRejected,   // the whole message is refused (bad envelope, too large): one dead letter
};

struct Request {
    Payload payload;
    RequestMode mode = RequestMode::kFireAndForget;
    RequestState state = RequestState::kNew;
    Reason rejectReason = Reason::kBadRequest;  // when state == kRejected
    std::string rejectMessage;

    // Acknowledged requests only.
    std::string routingId;   // the ROUTER identity of the DEALER that sent it
    bool reqEnvelope = false;  // the request began with an empty delimiter frame (a REQ socket)
    std::string producer;
    uint64_t seq = 0;

    uint32_t events = 0;     // non-empty lines: the count the batch bounds use
    uint64_t wireBytes = 0;  // the body's size as received (the payload may keep less)
    int64_t receivedAtMs = 0;
    int64_t receivedMonoNs = 0;
};

enum class CloseReason : uint8_t { kEvents, kBytes, kDelay, kDrain, kReload, kIdle };

inline std::string_view closeReasonName(CloseReason r)
{
    switch (r) {
    case CloseReason::kEvents: return "events";
    case CloseReason::kBytes: return "bytes";
    case CloseReason::kDelay: return "delay";
    case CloseReason::kDrain: return "drain";
    case CloseReason::kReload: return "reload";
    case CloseReason::kIdle: return "idle";
    }
    return "?";
}

// A batch, or one part of it. The batcher may hand a batch on in parts while it fills, so that
// the pipeline works on the first requests while later ones arrive: every part carries the
// batch's id and opening time; `requests`, `events` and `bytes` are the part's own; the close
// fields are set on the final part only. A batch handed on whole is one part, first and final.
struct Batch {
    uint64_t id = 0;
    bool first = true;   // the batch's first part: the pipeline starts a new batch with it
    bool final = true;   // the batch's last part: the pipeline closes the batch with it
    std::vector<Request> requests;
    uint64_t events = 0;
    uint64_t bytes = 0;
    int64_t openedAtMs = 0;
    int64_t openedMonoNs = 0;
    int64_t closedAtMs = 0;
    int64_t closedMonoNs = 0;
    CloseReason closeReason = CloseReason::kDelay;
    // Final part only: how many requests the whole batch took and the sum, over them, of the
    // time from each one's arrival to the close (what requests waited for the batch to close).
    uint64_t batchRequests = 0;
    int64_t closeWaitNs = 0;
};

// The event lines of an NDJSON body, in order: the body is split at '\n'; a line holding only
// spaces, tabs and '\r' is blank and skipped; one '\r' before the '\n' is dropped. A line's
// index (its position among the non-blank lines, from 0) is what replies and dead letters call
// the event's index. `fn(line)` sees views into `body`.
template <typename Fn>
void forEachLine(std::string_view body, Fn&& fn)
{
    size_t pos = 0;
    while (pos < body.size()) {
        const void* nl = std::memchr(body.data() + pos, '\n', body.size() - pos);
        const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - body.data()) : body.size();
        std::string_view line = body.substr(pos, end - pos);
        pos = end + 1;
        bool blank = true;
        for (char c : line) {
            if (c != ' ' && c != '\t' && c != '\r') {
                blank = false;
                break;
            }
        }
        if (blank)
            continue;
        if (line.back() == '\r')
            line.remove_suffix(1);
        fn(line);
    }
}

// Counts the events a message holds: the lines forEachLine() visits.
uint32_t countEvents(std::string_view body);

}  // namespace sluice
