// Time, injectable. Stages never read the system clocks directly: they take a Clock&, so tests
// can drive batch ages and key expiry with a ManualClock.
#pragma once

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sluice {

class Clock {
public:
    virtual ~Clock() = default;
    // Wall-clock time in milliseconds since the Unix epoch: event times, received_at, key expiry.
    virtual int64_t wallMs() const = 0;
    // A monotonic clock in nanoseconds: ages, timeouts, latencies. Its epoch is arbitrary.
    virtual int64_t monoNs() const = 0;
};

class SystemClock final : public Clock {
public:
    int64_t wallMs() const override
    {
        using namespace std::chrono;
        return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    }
    int64_t monoNs() const override
    {
        using namespace std::chrono;
        return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
    }
    static SystemClock& instance()
    {
        static SystemClock clock;
        return clock;
    }
};

// CPU time used so far, in nanoseconds, by the calling thread (CLOCK_THREAD_CPUTIME_ID) or the
// process (CLOCK_PROCESS_CPUTIME_ID): what work costs, not how long it took.
inline int64_t cpuNs(clockid_t clock)
{
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
inline int64_t threadCpuNs() { return cpuNs(CLOCK_THREAD_CPUTIME_ID); }

// A clock that moves only when told to. Safe to read and advance from different threads.
class ManualClock final : public Clock {
public:
    explicit ManualClock(int64_t wallMs = 1'700'000'000'000, int64_t monoNs = 1'000'000'000)
        : wallMs_(wallMs), monoNs_(monoNs) {}

    int64_t wallMs() const override { return wallMs_.load(); }
    int64_t monoNs() const override { return monoNs_.load(); }

    void advanceMs(int64_t ms)
    {
        wallMs_ += ms;
        monoNs_ += ms * 1'000'000;
    }
    void setWallMs(int64_t ms) { wallMs_ = ms; }

private:
    std::atomic<int64_t> wallMs_;
    std::atomic<int64_t> monoNs_;
};

}  // namespace sluice
