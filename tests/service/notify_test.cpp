#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>

#include "service/notify.h"

using namespace sluice::service;
using namespace std::chrono_literals;

namespace {

// Sets (or unsets, with nullopt) an environment variable for one scope.
class EnvVar {
public:
    EnvVar(const char* name, std::optional<std::string> value) : name_(name)
    {
        if (const char* old = std::getenv(name))
            old_ = old;
        if (value)
            ::setenv(name, value->c_str(), 1);
        else
            ::unsetenv(name);
    }
    ~EnvVar()
    {
        if (old_)
            ::setenv(name_, old_->c_str(), 1);
        else
            ::unsetenv(name_);
    }
    EnvVar(const EnvVar&) = delete;
    EnvVar& operator=(const EnvVar&) = delete;

private:
    const char* name_;
    std::optional<std::string> old_;
};

// What systemd does for a Type=notify service: a datagram socket whose path is $NOTIFY_SOCKET.
class FakeNotifySocket {
public:
    FakeNotifySocket()
    {
        char dir[] = "/tmp/sluice-notify-XXXXXX";
        REQUIRE(::mkdtemp(dir) != nullptr);
        dir_ = dir;
        path_ = dir_ + "/notify";
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        REQUIRE(path_.size() < sizeof addr.sun_path);
        std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        timeval timeout{2, 0};  // a missing datagram fails the test instead of hanging it
        REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == 0);
    }
    ~FakeNotifySocket()
    {
        ::close(fd_);
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    FakeNotifySocket(const FakeNotifySocket&) = delete;
    FakeNotifySocket& operator=(const FakeNotifySocket&) = delete;

    const std::string& path() const { return path_; }

    // The next datagram, or "" after the timeout.
    std::string receive()
    {
        char buf[4096];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }
    // True when no datagram is waiting.
    bool empty()
    {
        char c;
        return ::recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0;
    }

private:
    std::string dir_;
    std::string path_;
    int fd_ = -1;
};

uint64_t monotonicUsecNow()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

TEST_CASE("Notifier sends each state to $NOTIFY_SOCKET", "[notify]")
{
    FakeNotifySocket socket;
    EnvVar env("NOTIFY_SOCKET", socket.path());
    Notifier notifier;
    REQUIRE(notifier.enabled());

    notifier.status("opening the database");
    CHECK(socket.receive() == "STATUS=opening the database");
    notifier.ready();
    CHECK(socket.receive() == "READY=1");
    notifier.watchdogPing();
    CHECK(socket.receive() == "WATCHDOG=1");
    notifier.extendTimeout(30s);
    CHECK(socket.receive() == "EXTEND_TIMEOUT_USEC=30000000");
    notifier.stopping();
    CHECK(socket.receive() == "STOPPING=1");
    CHECK(socket.empty());
}

TEST_CASE("Notifier::reloading carries the monotonic time systemd >= 253 expects", "[notify]")
{
    FakeNotifySocket socket;
    EnvVar env("NOTIFY_SOCKET", socket.path());
    Notifier notifier;

    const uint64_t before = monotonicUsecNow();
    notifier.reloading();
    const uint64_t after = monotonicUsecNow();
    const std::string message = socket.receive();
    const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
    REQUIRE(message.rfind(prefix, 0) == 0);
    const uint64_t usec = std::stoull(message.substr(prefix.size()));
    CHECK(usec >= before);
    CHECK(usec <= after);
}

TEST_CASE("Notifier::status cannot inject other assignments", "[notify]")
{
    FakeNotifySocket socket;
    EnvVar env("NOTIFY_SOCKET", socket.path());
    Notifier notifier;

    notifier.status("12 events/s\nREADY=1\r\tlast commit 0.2 s ago");
    CHECK(socket.receive() == "STATUS=12 events/s READY=1  last commit 0.2 s ago");
    CHECK(socket.empty());
}

TEST_CASE("Notifier is a no-op without $NOTIFY_SOCKET", "[notify]")
{
    EnvVar env("NOTIFY_SOCKET", std::nullopt);
    Notifier notifier;
    CHECK_FALSE(notifier.enabled());
    notifier.ready();
    notifier.reloading();
    notifier.status("anything");
    notifier.watchdogPing();
    notifier.extendTimeout(1s);
    notifier.stopping();
}

TEST_CASE("Notifier survives a notify socket that has gone away", "[notify]")
{
    std::string path;
    {
        FakeNotifySocket socket;
        path = socket.path();
    }
    EnvVar env("NOTIFY_SOCKET", path);
    Notifier notifier;
    CHECK(notifier.enabled());
    notifier.ready();  // fails, logs a warning, returns
    notifier.watchdogPing();
}

TEST_CASE("Notifier::watchdogInterval follows $WATCHDOG_USEC and $WATCHDOG_PID", "[notify]")
{
    SECTION("enabled for this process")
    {
        EnvVar usec("WATCHDOG_USEC", "10000000");
        EnvVar pid("WATCHDOG_PID", std::to_string(::getpid()));
        Notifier notifier;
        REQUIRE(notifier.watchdogInterval().has_value());
        CHECK(*notifier.watchdogInterval() == 10s);
    }
    SECTION("enabled without a pid")
    {
        EnvVar usec("WATCHDOG_USEC", "2500000");
        EnvVar pid("WATCHDOG_PID", std::nullopt);
        Notifier notifier;
        REQUIRE(notifier.watchdogInterval().has_value());
        CHECK(*notifier.watchdogInterval() == 2500ms);
    }
    SECTION("meant for another process")
    {
        EnvVar usec("WATCHDOG_USEC", "10000000");
        EnvVar pid("WATCHDOG_PID", std::to_string(::getpid() + 1));
        Notifier notifier;
        CHECK_FALSE(notifier.watchdogInterval().has_value());
    }
    SECTION("not enabled")
    {
        EnvVar usec("WATCHDOG_USEC", std::nullopt);
        EnvVar pid("WATCHDOG_PID", std::nullopt);
        Notifier notifier;
        CHECK_FALSE(notifier.watchdogInterval().has_value());
    }
}
