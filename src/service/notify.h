// The daemon's conversation with systemd: state notifications (sd_notify(3)) and the watchdog.
//
// Notifier sends READY=1, RELOADING=1, STOPPING=1, STATUS=... and WATCHDOG=1 to $NOTIFY_SOCKET.
// Without $NOTIFY_SOCKET (not started by systemd, or Type= is not notify) every call is a cheap
// no-op, so the daemon behaves the same in a terminal, in tests and under systemd.
//
// ProgressWatchdog decides whether WATCHDOG=1 may be sent: the pipeline's threads report
// progress, the main loop asks whether every stage is still moving. A stuck stage stops the
// pings, and systemd kills and restarts the daemon after WatchdogSec.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::service {

// Thread-safe: any thread may call any member. $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID
// are read once, by the constructor; the environment is left as it is. Send failures are logged
// (the first of a run of failures as a warning, the rest at debug level) and never thrown:
// losing a notification must not take the daemon down.
class Notifier {
public:
    Notifier();

    // True when $NOTIFY_SOCKET was set: notifications go somewhere.
    bool enabled() const { return enabled_; }

    // READY=1: start-up (or a reload) is complete. Send only once the database is open and
    // checked, the keys and contracts are loaded and the sockets are bound.
    void ready();
    // RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC in µs>, which systemd >= 253 requires to
    // match the reload to its request (older versions ignore the field). Follow with ready().
    void reloading();
    // STOPPING=1: shutdown has begun. Send on every exit path.
    void stopping();
    // STATUS=<text>: one line a person can read in `systemctl status`. Newlines and other control
    // characters are replaced by spaces, so the text cannot inject other assignments.
    void status(std::string_view text);
    // WATCHDOG=1: the daemon is alive. Send more often than watchdogInterval(), typically every
    // half interval, and only while ProgressWatchdog::tick() reports the pipeline healthy.
    void watchdogPing();
    // EXTEND_TIMEOUT_USEC=<us>: the current start, reload or stop needs up to `extra` more time
    // (e.g. a long database check before READY). Repeat before it runs out.
    void extendTimeout(std::chrono::microseconds extra);

    // The watchdog interval (WatchdogSec=) when systemd expects pings from this process
    // (sd_watchdog_enabled(3)); nullopt when it does not.
    std::optional<std::chrono::microseconds> watchdogInterval() const { return watchdogInterval_; }

private:
    void send(const std::string& state);

    bool enabled_ = false;
    std::optional<std::chrono::microseconds> watchdogInterval_;
    std::atomic<bool> failing_{false};
};

// Tracks whether every pipeline stage still makes progress.
//
// Startup registers the stages (addStage) before any pipeline thread runs. Each stage's own
// thread then calls beat() whenever it makes progress, AND whenever it wakes from an idle wait
// with nothing to do, so an idle daemon stays healthy: a stage therefore waits with a timeout
// shorter than the stall limit, never indefinitely. Before an operation that may block for a
// long time (a SQLite commit, an fsync), it calls busy("commit"); the next beat() ends it.
// beat() and busy() are lock-free (relaxed atomics, no clock read) and cheap enough to call per
// batch or per wake-up; they are not meant for every event.
//
// The main loop calls tick(now) periodically (e.g. every half watchdog interval). tick() notes
// which stages' beat counts moved since the last tick; a stage whose count has not moved for
// longer than the stall limit is stalled, and tick() returns a Health that names it. Because
// progress is observed at ticks, a stall is reported between `stallLimit` and
// `stallLimit + tick period` after the stage's last beat. tick() must be called by one thread
// at a time (the main loop); it is not synchronized with addStage().
class ProgressWatchdog {
public:
    class Stage {
    public:
        explicit Stage(std::string name) : name_(std::move(name)) {}
        Stage(const Stage&) = delete;
        Stage& operator=(const Stage&) = delete;

        // Progress, or an idle wake-up with nothing to do. Ends a busy() period.
        void beat() noexcept
        {
            busyWith_.store(nullptr, std::memory_order_relaxed);
            beats_.fetch_add(1, std::memory_order_relaxed);
        }
        // Starts an operation that may take long; `what` names it in stall reports and must be a
        // string literal (or otherwise outlive the watchdog). Counts as progress itself.
        void busy(const char* what) noexcept
        {
            busyWith_.store(what, std::memory_order_relaxed);
            beats_.fetch_add(1, std::memory_order_relaxed);
        }
        // The stage has ended on purpose (its thread finished, e.g. during a drain): it is no
        // longer watched. Cannot be undone.
        void retire() noexcept { retired_.store(true, std::memory_order_relaxed); }

        const std::string& name() const { return name_; }

    private:
        friend class ProgressWatchdog;

        const std::string name_;
        std::atomic<uint64_t> beats_{0};
        std::atomic<const char*> busyWith_{nullptr};
        std::atomic<bool> retired_{false};
        // Owned by tick(): the count seen at the last tick and when it last changed.
        uint64_t seenBeats_ = 0;
        std::chrono::nanoseconds lastChange_{0};
        bool watched_ = false;
    };

    // The verdict of one tick. When not healthy, names the stage that has been silent longest.
    struct Health {
        bool healthy = true;
        std::string stage;                 // the stalled stage
        std::string busyWith;              // what it declared with busy(), or empty
        std::chrono::nanoseconds silentFor{0};

        explicit operator bool() const { return healthy; }
        // "writer stalled: busy in commit for 12.3 s" / "ingest stalled: no progress for 12.3 s"
        std::string describe() const;
    };

    explicit ProgressWatchdog(std::chrono::nanoseconds stallLimit) : stallLimit_(stallLimit) {}
    ProgressWatchdog(const ProgressWatchdog&) = delete;
    ProgressWatchdog& operator=(const ProgressWatchdog&) = delete;

    // Registers a stage; the reference stays valid for the watchdog's lifetime. Startup only.
    // A new stage's clock starts at the first tick that sees it.
    Stage& addStage(std::string name);

    // `now` is a monotonic time (e.g. Clock::monoNs()); it must not go backwards between ticks.
    Health tick(std::chrono::nanoseconds now);

    std::chrono::nanoseconds stallLimit() const { return stallLimit_; }

private:
    const std::chrono::nanoseconds stallLimit_;
    std::deque<Stage> stages_;  // a deque: Stage& handed out stay valid as stages are added
};

}  // namespace sluice::service
