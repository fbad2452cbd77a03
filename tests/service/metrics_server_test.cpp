#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cctype>
#include <stdexcept>
#include <string>
#include <thread>

#include "service/metrics_server.h"

using namespace sluice;
using namespace sluice::service;
using namespace std::chrono_literals;

namespace {

// A plain blocking TCP client, so the server is tested against bytes, not against Beast.
class Client {
public:
    explicit Client(uint16_t port)
    {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        timeval timeout{5, 0};  // a server that never answers fails the test instead of hanging it
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    ~Client() { ::close(fd_); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool connected() const { return connected_; }

    void send(const std::string& bytes)
    {
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
            if (n <= 0)
                return;  // the server may close early (e.g. on an oversized request)
            done += static_cast<std::size_t>(n);
        }
    }

    // Everything until the server closes the connection (or the 5 s timeout).
    std::string readAll()
    {
        std::string out;
        char buf[4096];
        for (;;) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            out.append(buf, static_cast<std::size_t>(n));
        }
        return out;
    }

private:
    int fd_ = -1;
    bool connected_ = false;
};

struct Response {
    std::string statusLine;
    std::string headers;  // lower-cased, "name: value\n" per line
    std::string body;

    std::string header(const std::string& name) const
    {
        const std::string key = name + ": ";
        const auto at = headers.find(key);
        if (at == std::string::npos)
            return {};
        const auto end = headers.find('\n', at);
        return headers.substr(at + key.size(), end - at - key.size());
    }
};

Response parse(const std::string& raw)
{
    Response r;
    const auto headEnd = raw.find("\r\n\r\n");
    if (headEnd == std::string::npos)
        return r;
    const auto lineEnd = raw.find("\r\n");
    r.statusLine = raw.substr(0, lineEnd);
    std::string head = raw.substr(lineEnd + 2, headEnd - lineEnd - 2);
    // Header names are case-insensitive; values here are compared lower-cased too.
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
    for (std::size_t pos = 0; pos < head.size();) {
        auto end = head.find("\r\n", pos);
        if (end == std::string::npos)
            end = head.size();
        r.headers += head.substr(pos, end - pos) + "\n";
        pos = end + 2;
    }
    r.body = raw.substr(headEnd + 4);
    return r;
}

Response request(uint16_t port, const std::string& method, const std::string& target)
{
    Client client(port);
    REQUIRE(client.connected());
    client.send(method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n");
    return parse(client.readAll());
}

// A server on an ephemeral loopback port, served by its own thread.
class Running {
public:
    explicit Running(MetricsServer::RenderFn render, MetricsServer::Options options = {})
    {
        options.listen = "127.0.0.1:0";
        auto started = MetricsServer::start(io_, options, std::move(render));
        REQUIRE(started.isOk());
        server_ = std::move(started.value());
        thread_ = std::thread([this] { io_.run(); });
    }
    ~Running()
    {
        if (server_)
            server_->stop();
        if (thread_.joinable())
            thread_.join();
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;

    uint16_t port() const { return server_->port(); }
    MetricsServer& server() { return *server_; }
    // stop() and wait until the io_context has nothing left to run: every handler is done.
    void stopAndJoin()
    {
        server_->stop();
        thread_.join();
    }

private:
    boost::asio::io_context io_;
    std::unique_ptr<MetricsServer> server_;
    std::thread thread_;
};

const std::string kBody = "# HELP up Up.\n# TYPE up gauge\nup 1\n";

}  // namespace

TEST_CASE("GET /metrics serves the callback's text with the exposition content type", "[metrics_server]")
{
    int calls = 0;
    Running running([&] {
        ++calls;
        return kBody;
    });
    REQUIRE(running.port() != 0);
    CHECK(running.server().address() == "127.0.0.1:" + std::to_string(running.port()));

    const auto r = request(running.port(), "GET", "/metrics");
    CHECK(r.statusLine == "HTTP/1.1 200 OK");
    CHECK(r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(r.header("content-length") == std::to_string(kBody.size()));
    CHECK(r.header("connection") == "close");
    CHECK(r.body == kBody);

    // A query string is ignored; every scrape renders afresh.
    CHECK(request(running.port(), "GET", "/metrics?x=1").body == kBody);
    running.stopAndJoin();
    CHECK(calls == 2);
}

TEST_CASE("/healthz, unknown paths and other methods", "[metrics_server]")
{
    Running running([] { return kBody; });

    const auto health = request(running.port(), "GET", "/healthz");
    CHECK(health.statusLine == "HTTP/1.1 200 OK");
    CHECK(health.body == "ok");

    const auto missing = request(running.port(), "GET", "/nope");
    CHECK(missing.statusLine == "HTTP/1.1 404 Not Found");

    const auto post = request(running.port(), "POST", "/metrics");
    CHECK(post.statusLine == "HTTP/1.1 405 Method Not Allowed");
    CHECK(post.header("allow") == "get");

    const auto head = request(running.port(), "HEAD", "/metrics");
    CHECK(head.statusLine == "HTTP/1.1 405 Method Not Allowed");
}

TEST_CASE("a throwing callback gives a 500 and the server keeps serving", "[metrics_server]")
{
    std::atomic<bool> fail{true};
    Running running([&]() -> std::string {
        if (fail)
            throw std::runtime_error("registry on fire");
        return kBody;
    });
    CHECK(request(running.port(), "GET", "/metrics").statusLine == "HTTP/1.1 500 Internal Server Error");
    fail = false;
    CHECK(request(running.port(), "GET", "/metrics").body == kBody);
}

TEST_CASE("malformed, oversized and silent clients are dropped", "[metrics_server]")
{
    MetricsServer::Options options;
    options.maxRequestBytes = 1024;
    options.timeout = 300ms;
    Running running([] { return kBody; }, options);

    SECTION("garbage")
    {
        Client client(running.port());
        client.send("\x01\x02 not http\r\n\r\n");
        CHECK(client.readAll().empty());
    }
    SECTION("headers beyond the limit")
    {
        Client client(running.port());
        client.send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(4096, 'a') + "\r\n\r\n");
        CHECK(client.readAll().empty());
    }
    SECTION("a client that sends nothing is closed after the timeout")
    {
        Client client(running.port());
        const auto before = std::chrono::steady_clock::now();
        CHECK(client.readAll().empty());
        const auto waited = std::chrono::steady_clock::now() - before;
        CHECK(waited >= 250ms);
        CHECK(waited < 4s);  // well before the client's own 5 s receive timeout
    }
    // Whatever happened above, the next client is served.
    CHECK(request(running.port(), "GET", "/healthz").body == "ok");
}

TEST_CASE("connections beyond the cap are closed at once", "[metrics_server]")
{
    MetricsServer::Options options;
    options.maxConnections = 1;
    Running running([] { return kBody; }, options);

    Client first(running.port());  // accepted, and idle: it holds the only slot
    REQUIRE(first.connected());
    Client second(running.port());
    REQUIRE(second.connected());  // the kernel completes the handshake; the server then closes it
    CHECK(second.readAll().empty());

    first.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(parse(first.readAll()).body == "ok");
}

TEST_CASE("stop() closes the listener and open connections, and the io_context runs dry", "[metrics_server]")
{
    Running running([] { return kBody; });
    const uint16_t port = running.port();
    Client idle(port);
    REQUIRE(idle.connected());
    CHECK(request(port, "GET", "/healthz").body == "ok");  // the idle client has been accepted

    running.stopAndJoin();  // returns only once no handler is left
    CHECK(idle.readAll().empty());
    Client late(port);
    CHECK_FALSE(late.connected());
}

TEST_CASE("listen addresses: literals and localhost accepted, anything else refused", "[metrics_server]")
{
    boost::asio::io_context io;
    auto startOn = [&](const std::string& listen) {
        MetricsServer::Options options;
        options.listen = listen;
        return MetricsServer::start(io, options, [] { return std::string(); });
    };

    for (const char* bad : {"", "nohost", "127.0.0.1", ":9464", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536",
                            "127.0.0.1:-1", "::1:9464", "[::1]9464", "[::1", "[127.0.0.1]:0", "example.com:80",
                            "256.0.0.1:80"}) {
        INFO(bad);
        const auto result = startOn(bad);
        REQUIRE_FALSE(result.isOk());
        CHECK(result.status().code() == StatusCode::kInvalidArgument);
    }

    auto local = startOn("localhost:0");
    REQUIRE(local.isOk());
    CHECK(local.value()->address().rfind("127.0.0.1:", 0) == 0);

    // The port is taken: a second listener is refused, not silently shared.
    const auto taken = startOn("127.0.0.1:" + std::to_string(local.value()->port()));
    REQUIRE_FALSE(taken.isOk());
    CHECK(taken.status().code() == StatusCode::kUnavailable);

    auto v6 = startOn("[::1]:0");
    if (v6.isOk())
        CHECK(v6.value()->address().rfind("[::1]:", 0) == 0);
    else
        WARN("no IPv6 loopback here: " << v6.status().message());
}
