#include "service/notify.h"

#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "core/log.h"

namespace sluice::service {
namespace {

uint64_t monotonicUsec()
{
    // CLOCK_MONOTONIC explicitly: that is the clock systemd compares MONOTONIC_USEC with.
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

Notifier::Notifier()
{
    const char* socket = std::getenv("NOTIFY_SOCKET");
    enabled_ = socket != nullptr && socket[0] != '\0';

    uint64_t usec = 0;
    // > 0 only when $WATCHDOG_USEC is set and $WATCHDOG_PID (if set) is this process.
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        watchdogInterval_ = std::chrono::microseconds(usec);
}

void Notifier::send(const std::string& state)
{
    if (!enabled_)
        return;
    const int rc = sd_notify(0, state.c_str());
    if (rc > 0) {
        if (failing_.exchange(false, std::memory_order_relaxed))
            log::info("sd_notify: delivering again");
        return;
    }
    // rc == 0 would mean no socket, which enabled_ ruled out; treat it as a failure too.
    const std::string why = rc < 0 ? std::strerror(-rc) : "no notify socket";
    const auto head = state.substr(0, state.find('='));
    if (!failing_.exchange(true, std::memory_order_relaxed))
        log::warning("sd_notify ", head, ": ", why);
    else
        log::debug("sd_notify ", head, ": ", why);
}

void Notifier::ready() { send("READY=1"); }

void Notifier::reloading()
{
    if (!enabled_)
        return;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonicUsec()));
}

void Notifier::stopping() { send("STOPPING=1"); }

void Notifier::status(std::string_view text)
{
    if (!enabled_)
        return;
    std::string state = "STATUS=";
    state.reserve(state.size() + text.size());
    for (char c : text)
        state += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
    send(state);
}

void Notifier::watchdogPing() { send("WATCHDOG=1"); }

void Notifier::extendTimeout(std::chrono::microseconds extra)
{
    if (!enabled_)
        return;
    send("EXTEND_TIMEOUT_USEC=" + std::to_string(extra.count() > 0 ? extra.count() : 0));
}

std::string ProgressWatchdog::Health::describe() const
{
    if (healthy)
        return "healthy";
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f s", std::chrono::duration<double>(silentFor).count());
    if (!busyWith.empty())
        return stage + " stalled: busy in " + busyWith + " for " + seconds;
    return stage + " stalled: no progress for " + seconds;
}

ProgressWatchdog::Stage& ProgressWatchdog::addStage(std::string name)
{
    return stages_.emplace_back(std::move(name));
}

ProgressWatchdog::Health ProgressWatchdog::tick(std::chrono::nanoseconds now)
{
    Health health;
    for (Stage& stage : stages_) {
        if (stage.retired_.load(std::memory_order_relaxed))
            continue;
        const uint64_t beats = stage.beats_.load(std::memory_order_relaxed);
        if (!stage.watched_ || beats != stage.seenBeats_) {
            stage.watched_ = true;
            stage.seenBeats_ = beats;
            stage.lastChange_ = now;
            continue;
        }
        const auto silent = now - stage.lastChange_;
        if (silent > stallLimit_ && (health.healthy || silent > health.silentFor)) {
            health.healthy = false;
            health.stage = stage.name_;
            const char* what = stage.busyWith_.load(std::memory_order_relaxed);
            health.busyWith = what != nullptr ? what : "";
            health.silentFor = silent;
        }
    }
    return health;
}

}  // namespace sluice::service
