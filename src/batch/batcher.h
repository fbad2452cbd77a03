// The micro-batcher: collects requests into a Batch and closes it when it holds max_events
// events or max_bytes bytes, or when max_delay has passed since its first request (monotonic
// clock), whichever comes first. A request is never split: when adding one would overflow the
// open batch, the open batch closes first; a single request larger than a bound makes a batch
// of its own.
//
// The open batch may be handed on in parts before it closes (release()): the sink then gets the
// requests added since the previous part, with first/final set (core/batch.h). Without
// release() every batch goes to the sink whole, as one part.
//
// Used by the ingest thread only (not thread-safe). Batches go to the sink given at
// construction, numbered consecutively.
#pragma once

#include <cstdint>
#include <functional>

#include "core/batch.h"
#include "core/clock.h"

namespace sluice::batch {

struct Limits {
    uint64_t maxEvents = 10'000;
    uint64_t maxBytes = 8 * 1024 * 1024;
    int64_t maxDelayMs = 200;
    // Also close the open batch, whatever it holds, whenever every batch before it is durable
    // (the owner says when: Batcher::flush(CloseReason::kIdle)). Waiting longer would buy fewer
    // commits, which an idle writer does not need; max_delay then bounds the wait only while
    // the pipeline is busy.
    bool closeWhenIdle = false;
    // A part is worth handing on (worthReleasing()) once it holds this many events or bytes:
    // each part costs a hand-off to the processor, its workers and the writer (about 100 µs of
    // CPU whatever its size, measured at one event per message), which a handful of events does
    // not repay; below these a batch goes on whole at its close, and its tail is small anyway.
    // Small enough that a message of the bench's 100 events is a part of its own, as before
    // (128 made parts of two such messages and moved work behind the close at C/4).
    uint64_t minPartEvents = 16;
    uint64_t minPartBytes = 8 * 1024;
};

class Batcher {
public:
    using Sink = std::function<void(Batch&&)>;

    Batcher(Limits limits, const Clock& clock, uint64_t firstBatchId, Sink sink);

    void add(Request&& request);
    // Closes the open batch if its delay has passed, or will pass within `earlyNs` (an owner
    // that can only wait in coarse steps closes at its last wake-up before the deadline, rather
    // than at the first one after it). Call whenever the ingest loop wakes up.
    void poll(int64_t earlyNs = 0);
    // Closes the open batch now, whatever it holds (drain, or a reload: the new configuration
    // applies from the next batch). No-op when empty.
    void flush(CloseReason reason = CloseReason::kDrain);
    // Hands the requests added to the open batch since its previous part on as a non-final part
    // (the batch stays open). No-op when there are none.
    void release();

    // No batch is open.
    bool empty() const { return !opened_; }
    // The open batch holds requests not handed on yet.
    bool unreleased() const { return !open_.requests.empty(); }
    // The requests not handed on yet make a part worth its hand-off (Limits::minPartEvents,
    // minPartBytes).
    bool worthReleasing() const
    {
        return unreleased() && (open_.events >= limits_.minPartEvents || open_.bytes >= limits_.minPartBytes);
    }
    // Nanoseconds until the open batch's delay expires (0 if it has); -1 when empty.
    int64_t nanosUntilDeadline() const;
    uint64_t nextBatchId() const { return nextId_; }

private:
    void close(CloseReason reason);

    Limits limits_;
    const Clock& clock_;
    uint64_t nextId_;
    Sink sink_;
    Batch open_;              // the open batch's requests not handed on yet, and its identity
    bool opened_ = false;     // a batch is open (it may have been handed on in parts already)
    bool released_ = false;   // a part of the open batch was handed on
    uint64_t openEvents_ = 0; // the whole open batch's events and bytes, for the bounds
    uint64_t openBytes_ = 0;
    uint64_t openRequests_ = 0;   // of the whole open batch, parts released included
    int64_t openReceivedNs_ = 0;  // sum of their arrival times after the batch opened
};

}  // namespace sluice::batch
