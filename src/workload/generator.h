// The reference workload of the spec (section 11) as a deterministic event generator: the
// acme/checkout/1.0.0 contract, 100,000 sessions (each belonging to one of 20,000 customers),
// 30 countries, 4 devices, the consent mix 40% [0,1,2], 30% [0,1], 20% [0], 10% [], events of
// about 300 bytes. Optionally a share of invalid events, one rejection reason after another.
// Used by sluicectl bench and send --generate, by the demo and by the tests. Pure: no I/O, no
// clock unless told a base time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/reason.h"

namespace sluice::workload {

struct Options {
    uint64_t seed = 1;
    uint64_t sessions = 100'000;
    uint64_t customers = 20'000;
    int countries = 30;
    int devices = 4;
    double invalidFraction = 0.0;
    int64_t baseTimeMs = 0;     // event_time = base + n * stepMs (+ jitter); 0: no event_time
    int64_t stepMs = 0;
    int64_t jitterMs = 0;       // event times move back by up to this much (out of order)
    size_t padBytes = 0;        // adds a "note" string of this many bytes (a contract must declare it)
};

class Generator {
public:
    explicit Generator(Options options);

    // Appends one event as a JSON line (no newline) to `out`. Returns nullopt for a valid event,
    // else the reason the daemon must reject it for.
    std::optional<Reason> next(std::string& out);

    // The same valid events as CSV rows for a batch job (csvHeader() names the columns): the
    // contract's fields, then `event_time` (ISO-8601 UTC with milliseconds; the base time when no
    // event times are configured) and `consent` ("[0,1,2]"). Invalid rows are not made.
    static std::string_view csvHeader();
    void nextCsv(std::string& out);

    uint64_t produced() const { return produced_; }

private:
    uint64_t random();
    double uniform() { return static_cast<double>(random() >> 11) * (1.0 / 9007199254740992.0); }
    // One valid event's values, drawn in the same order for JSON and CSV.
    struct Draw {
        uint64_t session, customer, ip, cents, items;
        int country, device;
        const char* consent;
        int64_t timeMs;
    };
    Draw draw(uint64_t n);
    void appendValid(std::string& out, uint64_t n);

    Options options_;
    uint64_t state_;
    uint64_t produced_ = 0;
    uint64_t invalidKind_ = 0;
};

std::string_view countryCode(int index);
std::string_view deviceName(int index);

}  // namespace sluice::workload
