// sluicectl status's pieces: the Prometheus text parser, histogram quantiles, and the plain
// HTTP GET against a one-shot server in the test (Content-Length, chunked, refused, silent).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "cli/metrics_client.h"

using namespace sluice;
using namespace sluice::cli;

namespace {

// Listens on 127.0.0.1 (ephemeral port); answers one connection with `response` (or stays silent).
class OneShotServer {
public:
    explicit OneShotServer(std::string response, bool silent = false)
    {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd_, 1) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this, response = std::move(response), silent] {
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0)
                return;
            char buf[4096];
            std::string request;
            while (request.find("\r\n\r\n") == std::string::npos) {
                const ssize_t n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0)
                    break;
                request.append(buf, static_cast<size_t>(n));
            }
            request_ = request;
            if (silent) {
                ::recv(c, buf, sizeof buf, 0);  // until the client gives up and closes
            } else {
                ::send(c, response.data(), response.size(), MSG_NOSIGNAL);
            }
            ::close(c);
        });
    }
    ~OneShotServer()
    {
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
        ::close(fd_);
    }
    std::string url(const std::string& path = "/metrics") const
    {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    const std::string& request() const { return request_; }

private:
    int fd_ = -1;
    uint16_t port_ = 0;
    std::thread thread_;
    std::string request_;
};

const char* const kMetrics = R"(# HELP sluice_events_received_total Events received.
# TYPE sluice_events_received_total counter
sluice_events_received_total 1200
sluice_events_rejected_total{reason="not_json"} 3
sluice_events_rejected_total{reason="wrong_type"} 4
sluice_build_info{version="0.1.0"} 1
sluice_queue_depth{queue="commit"} 2
odd_label{a="x\"y\\z",b="2"} 5 1700000000000
sluice_commit_seconds_bucket{le="0.001"} 10
sluice_commit_seconds_bucket{le="0.002"} 30
sluice_commit_seconds_bucket{le="0.004"} 40
sluice_commit_seconds_bucket{le="+Inf"} 40
sluice_commit_seconds_sum 0.05
sluice_commit_seconds_count 40
empty_bucket{le="1"} 0
empty_bucket{le="+Inf"} 0
tail_bucket{le="1"} 1
tail_bucket{le="+Inf"} 10
)";

}  // namespace

TEST_CASE("Prometheus text: samples, labels with escapes, sums", "[cli][metrics]")
{
    auto scrape = Scrape::parse(kMetrics);
    REQUIRE(scrape);
    CHECK(scrape->value("sluice_events_received_total") == 1200);
    CHECK(scrape->value("sluice_events_rejected_total", {{"reason", "wrong_type"}}) == 4);
    CHECK_FALSE(scrape->value("sluice_events_rejected_total", {{"reason", "too_large"}}));
    CHECK(scrape->sum("sluice_events_rejected_total") == 7);
    CHECK(scrape->sum("missing") == 0);
    CHECK(scrape->value("odd_label", {{"a", "x\"y\\z"}, {"b", "2"}}) == 5);
    CHECK(scrape->series("sluice_build_info").at(0)->labels.at(0).second == "0.1.0");

    CHECK_FALSE(Scrape::parse("name{unterminated=\"x} 1\n"));
    CHECK_FALSE(Scrape::parse("name not-a-number\n"));
}

TEST_CASE("histogram quantiles interpolate inside the bucket", "[cli][metrics]")
{
    auto scrape = Scrape::parse(kMetrics);
    REQUIRE(scrape);
    // 40 observations: 10 <= 1ms, 20 in (1, 2] ms, 10 in (2, 4] ms.
    CHECK(*scrape->quantile("sluice_commit_seconds", 0.5) == Approx(0.0015));   // rank 20: half of (1, 2]
    CHECK(*scrape->quantile("sluice_commit_seconds", 0.25) == Approx(0.001));   // rank 10: the first bound
    CHECK(*scrape->quantile("sluice_commit_seconds", 0.875) == Approx(0.003));  // rank 35: half of (2, 4]
    CHECK(*scrape->quantile("sluice_commit_seconds", 0.1) == Approx(0.0004));   // inside the first bucket
    CHECK_FALSE(scrape->quantile("empty", 0.5));
    CHECK_FALSE(scrape->quantile("missing", 0.5));
    CHECK(*scrape->quantile("tail", 0.99) == 1);  // past the last finite bound: that bound
}

TEST_CASE("httpGet: Content-Length and chunked bodies, refused and silent servers", "[cli][metrics]")
{
    {
        OneShotServer server("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        auto r = httpGet(server.url(), 2000);
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body == "hello");
        CHECK(server.request().rfind("GET /metrics HTTP/1.0\r\n", 0) == 0);
    }
    {
        OneShotServer server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n");
        auto r = httpGet(server.url(), 2000);
        REQUIRE(r);
        CHECK(r->body == "hello, world");
    }
    {
        OneShotServer server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        auto r = httpGet(server.url("/nope"), 2000);
        REQUIRE(r);
        CHECK(r->status == 404);
    }
    {
        OneShotServer server("", true);
        const auto start = std::chrono::steady_clock::now();
        auto r = httpGet(server.url(), 200);
        CHECK_FALSE(r);
        CHECK(r.status().code() == StatusCode::kIoError);
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    }
    // A port that was just free: nothing listens, the connection is refused.
    uint16_t port;
    {
        OneShotServer server("HTTP/1.1 200 OK\r\n\r\n");
        port = static_cast<uint16_t>(std::stoi(server.url().substr(17, 5)));
        (void)httpGet(server.url(), 1000);
    }
    auto refused = httpGet("http://127.0.0.1:" + std::to_string(port) + "/metrics", 1000);
    CHECK_FALSE(refused);
    CHECK(refused.status().code() == StatusCode::kUnavailable);

    CHECK(httpGet("https://127.0.0.1/metrics", 100).status().code() == StatusCode::kInvalidArgument);
    CHECK(httpGet("http://127.0.0.1:notaport/", 100).status().code() == StatusCode::kInvalidArgument);
}
