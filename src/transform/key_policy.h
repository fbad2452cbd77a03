// Which data key an event gets: what differs between the daemon and a batch job.
//
// Both find keys by a keyed hash (the "lookup") of "contract \0 key-field value", to which the
// policy may append more (a job appends the record's UTC day). The policy also says by which
// clock a key counts as active, and how long a new key lives:
//   - RollingKeys (the daemon): a key is active until `lifetime` after it was created, judged
//     by the wall clock; the next event after that gets a new key.
//   - DailyKeys (batch jobs): one key per key-field value and UTC calendar day of the record's
//     timestamp, judged by that timestamp, so that a job run twice over the same input (in the
//     same key store) encrypts it byte for byte the same.
// Policies are immutable and may be shared by every lane.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "privacy/key_cache.h"

namespace sluice::transform {

class KeyPolicy {
public:
    virtual ~KeyPolicy() = default;
    // Appends what the lookup hash covers beyond "contract \0 value".
    virtual void appendLookupSuffix(int64_t eventTimeMs, std::string& out) const = 0;
    // The term of the key for an event with this time, processed at wall-clock `nowMs`.
    virtual privacy::KeyTerm term(int64_t eventTimeMs, int64_t nowMs) const = 0;
    // The instant at which the key directory read at start judges which keys are active.
    virtual int64_t preloadAtMs(int64_t nowMs) const = 0;
    // Whether keys expired by the wall clock may be dropped from memory.
    virtual bool prunesByWallClock() const = 0;
    // Whether the lookup suffix fixes the term: every key a lookup can have then expires at one
    // instant, and the key directory may hold terms apart (KeyCache::partitionByTerm).
    virtual bool lookupFixesTerm() const = 0;
};

class RollingKeys final : public KeyPolicy {
public:
    explicit RollingKeys(int64_t lifetimeMs) : lifetimeMs_(lifetimeMs) {}

    void appendLookupSuffix(int64_t, std::string&) const override {}
    privacy::KeyTerm term(int64_t, int64_t nowMs) const override { return {nowMs, nowMs, nowMs + lifetimeMs_}; }
    int64_t preloadAtMs(int64_t nowMs) const override { return nowMs; }
    bool prunesByWallClock() const override { return true; }
    bool lookupFixesTerm() const override { return false; }
    int64_t lifetimeMs() const { return lifetimeMs_; }

private:
    int64_t lifetimeMs_;
};

class DailyKeys final : public KeyPolicy {
public:
    static constexpr int64_t kDayMs = 86'400'000;

    // "\0YYYY-MM-DD" of the event's UTC day.
    void appendLookupSuffix(int64_t eventTimeMs, std::string& out) const override;
    // Active from the start of the event's UTC day to its end; created at wall-clock `nowMs`.
    privacy::KeyTerm term(int64_t eventTimeMs, int64_t nowMs) const override;
    // Every stored key counts: the events of a job may lie anywhere in time.
    int64_t preloadAtMs(int64_t) const override { return std::numeric_limits<int64_t>::min(); }
    bool prunesByWallClock() const override { return false; }
    bool lookupFixesTerm() const override { return true; }

    static int64_t dayStartMs(int64_t eventTimeMs);
};

}  // namespace sluice::transform
