#include "ingest/dedupe.h"

#include <algorithm>

namespace sluice::ingest {

DedupeIndex::DedupeIndex(uint64_t window)
    : window_(window < 64 ? 64 : (window + 63) / 64 * 64), ring_(window_ + 64)
{
}

DedupeIndex::Producer& DedupeIndex::find(std::string_view producer)
{
    auto it = producers_.find(std::string(producer));
    if (it == producers_.end())
        it = producers_.emplace(std::string(producer), Producer()).first;
    return it->second;
}

bool DedupeIndex::test(const Producer& p, uint64_t seq) const
{
    uint64_t i = seq % ring_;
    return i / 64 < p.bits.size() && ((p.bits[i / 64] >> (i % 64)) & 1);
}

void DedupeIndex::set(Producer& p, uint64_t seq)
{
    uint64_t i = seq % ring_;
    // The ring grows on demand: a producer that sent a few requests costs a few words, not the
    // whole window (128 KiB at the default), and daemons see thousands of producers.
    const size_t word = i / 64;
    if (word >= p.bits.size()) {
        if (word >= p.bits.capacity())  // grow geometrically, but never past the whole window
            p.bits.reserve(std::min<size_t>(ring_ / 64, std::max<size_t>(word + 1, 2 * p.bits.capacity())));
        p.bits.resize(word + 1, 0);
    }
    p.bits[i / 64] |= uint64_t{1} << (i % 64);
}

void DedupeIndex::advance(Producer& p, uint64_t seq)
{
    if (!p.any) {
        p.any = true;
        p.high = seq;
        return;
    }
    if (seq <= p.high)
        return;
    // Positions (high, seq] now stand for new sequence numbers: clear what they remembered.
    uint64_t steps = seq - p.high;
    if (steps >= ring_) {
        std::fill(p.bits.begin(), p.bits.end(), 0);
    } else {
        for (uint64_t s = p.high + 1; s <= seq; ++s) {
            uint64_t i = s % ring_;
            if (i / 64 < p.bits.size())  // words not allocated yet are clear
                p.bits[i / 64] &= ~(uint64_t{1} << (i % 64));
        }
    }
    p.high = seq;
}

DedupeIndex::Verdict DedupeIndex::admit(std::string_view producer, uint64_t seq, int64_t nowMs)
{
    Producer& p = find(producer);
    p.lastSeenMs = nowMs;
    if (p.any && seq <= p.high) {
        if (!inWindow(p, seq))
            return Verdict::kStale;
        if (test(p, seq) || p.inFlight.count(seq))
            return Verdict::kDuplicate;
    }
    p.inFlight.insert(seq);
    advance(p, seq);
    return Verdict::kNew;
}

void DedupeIndex::committed(std::string_view producer, uint64_t seq)
{
    Producer& p = find(producer);
    p.inFlight.erase(seq);
    advance(p, seq);
    if (inWindow(p, seq))
        set(p, seq);
}

void DedupeIndex::load(std::string_view producer, uint64_t seq, int64_t nowMs)
{
    Producer& p = find(producer);
    p.lastSeenMs = nowMs;
    advance(p, seq);
    if (inWindow(p, seq))
        set(p, seq);
}

size_t DedupeIndex::forgetIdle(int64_t cutoffMs)
{
    size_t n = 0;
    for (auto it = producers_.begin(); it != producers_.end();) {
        if (it->second.lastSeenMs < cutoffMs && it->second.inFlight.empty()) {
            it = producers_.erase(it);
            ++n;
        } else {
            ++it;
        }
    }
    return n;
}

uint64_t DedupeIndex::windowStart(std::string_view producer) const
{
    auto it = producers_.find(std::string(producer));
    if (it == producers_.end() || !it->second.any)
        return 0;
    return it->second.high >= window_ ? it->second.high - window_ : 0;
}

}  // namespace sluice::ingest
