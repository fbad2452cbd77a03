// Which acknowledged requests were already applied. A producer numbers its requests; the daemon
// remembers, per producer, the sequence numbers committed or in flight within a window below
// the highest one seen. A retry of a remembered request is a duplicate: answered ok, applied
// zero times. A sequence number below the window is stale: refused, because the daemon can no
// longer tell whether it was applied.
//
// The database (producer_marks) is the durable copy; this index is rebuilt from it at startup.
// Used by the ingest thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace sluice::ingest {

class DedupeIndex {
public:
    enum class Verdict { kNew, kDuplicate, kStale };

    // `window` is rounded up to a multiple of 64: the sequence numbers remembered below the
    // highest one seen (which is remembered too).
    explicit DedupeIndex(uint64_t window);

    // Classifies a request; a kNew request is recorded as in flight.
    Verdict admit(std::string_view producer, uint64_t seq, int64_t nowMs);
    // The request's batch committed.
    void committed(std::string_view producer, uint64_t seq);
    // Startup: a mark read back from the database.
    void load(std::string_view producer, uint64_t seq, int64_t nowMs);
    // Forgets producers not seen since `cutoffMs` (and with nothing in flight).
    size_t forgetIdle(int64_t cutoffMs);

    size_t producers() const { return producers_.size(); }
    uint64_t window() const { return window_; }
    // The lowest sequence number still remembered for `producer` (0 when unknown).
    uint64_t windowStart(std::string_view producer) const;

private:
    struct Producer {
        bool any = false;
        uint64_t high = 0;                     // highest sequence number admitted
        std::vector<uint64_t> bits;            // committed marks, ring indexed by seq % ring_
        std::unordered_set<uint64_t> inFlight;
        int64_t lastSeenMs = 0;
    };
    Producer& find(std::string_view producer);
    void advance(Producer& p, uint64_t seq);
    bool test(const Producer& p, uint64_t seq) const;
    void set(Producer& p, uint64_t seq);
    bool inWindow(const Producer& p, uint64_t seq) const { return p.high - seq <= window_; }

    uint64_t window_;
    uint64_t ring_;  // window_ + 64 bits: the highest number and window_ below it, in whole words
    std::unordered_map<std::string, Producer> producers_;
};

}  // namespace sluice::ingest
