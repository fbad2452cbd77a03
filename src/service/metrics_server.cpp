#include "service/metrics_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>
#include <exception>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/log.h"

namespace sluice::service {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextContentType = "text/plain; charset=utf-8";
// After a failed accept (EMFILE, ENOBUFS...), wait before the next one instead of spinning.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

// Runs `f`; an exception is logged, never propagated into the io_context.
template <typename F>
void guarded(std::string_view what, F&& f) noexcept
{
    try {
        f();
    } catch (const std::exception& e) {
        try {
            log::warning("metrics: ", what, ": ", e.what());
        } catch (...) {
        }
    } catch (...) {
        try {
            log::warning("metrics: ", what, ": unknown exception");
        } catch (...) {
        }
    }
}

std::string formatEndpoint(const tcp::endpoint& ep)
{
    const auto address = ep.address();
    std::string text = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    return text + ":" + std::to_string(ep.port());
}

Result<tcp::endpoint> parseListen(std::string_view text)
{
    const auto bad = [&](std::string_view why) {
        return Status::invalid("metrics listen address '" + std::string(text) + "': " + std::string(why));
    };
    std::string_view host;
    std::string_view port;
    const bool bracketed = !text.empty() && text.front() == '[';
    if (bracketed) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return bad("expected [IPv6]:port");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos)
            return bad("expected host:port");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return bad("an IPv6 address needs brackets, e.g. [::1]:9464");
    }
    if (host.empty())
        return bad("no host");

    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
        return bad("the port must be a number from 0 to 65535");

    asio::ip::address address;
    if (!bracketed && host == "localhost") {
        address = asio::ip::address_v4::loopback();
    } else {
        boost::system::error_code parseError;
        address = asio::ip::make_address(std::string(host), parseError);
        if (parseError || (bracketed && !address.is_v6()))
            return bad("not an IP address literal (or 'localhost')");
    }
    return tcp::endpoint(address, static_cast<unsigned short>(value));
}

class Connection;

// The listening socket and the open connections. Lives in a shared_ptr held by every pending
// handler; all of its state is touched only on `strand`.
class Server : public std::enable_shared_from_this<Server> {
public:
    Server(asio::io_context& io, MetricsServer::Options options, MetricsServer::RenderFn render)
        : strand(asio::make_strand(io)), acceptor(strand), retryTimer(strand),
          options(std::move(options)), render(std::move(render)) {}

    void accept();
    void stop();

    Strand strand;
    tcp::acceptor acceptor;
    asio::steady_timer retryTimer;
    const MetricsServer::Options options;
    const MetricsServer::RenderFn render;
    std::unordered_set<Connection*> connections;
    bool stopped = false;

private:
    void onAccept(const beast::error_code& ec, tcp::socket socket);
};

// One request, one response, then close.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(std::shared_ptr<Server> server, tcp::socket socket)
        : server_(std::move(server)), stream_(std::move(socket)), buffer_(server_->options.maxRequestBytes)
    {
        parser_.header_limit(static_cast<std::uint32_t>(server_->options.maxRequestBytes));
        parser_.body_limit(server_->options.maxRequestBytes);
    }
    ~Connection() { server_->connections.erase(this); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void start()
    {
        stream_.expires_after(server_->options.timeout);
        http::async_read(stream_, buffer_, parser_,
                         [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
                             guarded("read", [&] { self->onRead(ec); });
                         });
    }

    // Idempotent; cancels pending operations, whose handlers then find the connection closed.
    void close() noexcept
    {
        if (closed_)
            return;
        closed_ = true;
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.socket().close(ignored);
        server_->connections.erase(this);
    }

private:
    void onRead(const beast::error_code& ec)
    {
        if (closed_)
            return;
        if (ec) {
            // Timeouts, oversized or malformed requests, clients that hang up: theirs to fix.
            if (ec != http::error::end_of_stream)
                log::debug("metrics: dropping a request: ", ec.message());
            close();
            return;
        }
        respond(parser_.get());
        response_.prepare_payload();
        stream_.expires_after(server_->options.timeout);
        http::async_write(stream_, response_,
                          [self = shared_from_this()](const beast::error_code& writeError, std::size_t) {
                              guarded("write", [&] {
                                  if (writeError && writeError != asio::error::operation_aborted)
                                      log::debug("metrics: writing a response: ", writeError.message());
                                  self->close();
                              });
                          });
    }

    void respond(const http::request<http::string_body>& request)
    {
        response_.version(11);
        response_.keep_alive(false);
        response_.set(http::field::server, "sluiced");
        response_.set(http::field::content_type, kTextContentType);

        if (request.method() != http::verb::get) {
            response_.result(http::status::method_not_allowed);
            response_.set(http::field::allow, "GET");
            response_.body() = "method not allowed\n";
            return;
        }
        std::string_view target(request.target().data(), request.target().size());
        target = target.substr(0, target.find('?'));
        if (target == "/metrics") {
            try {
                response_.body() = server_->render();
                response_.result(http::status::ok);
                response_.set(http::field::content_type, kMetricsContentType);
            } catch (const std::exception& e) {
                log::warning("metrics: rendering failed: ", e.what());
                response_.result(http::status::internal_server_error);
                response_.body() = "internal error\n";
            } catch (...) {
                log::warning("metrics: rendering failed: unknown exception");
                response_.result(http::status::internal_server_error);
                response_.body() = "internal error\n";
            }
        } else if (target == "/healthz") {
            response_.result(http::status::ok);
            response_.body() = "ok";
        } else {
            response_.result(http::status::not_found);
            response_.body() = "not found\n";
        }
    }

    std::shared_ptr<Server> server_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    http::request_parser<http::string_body> parser_;
    http::response<http::string_body> response_;
    bool closed_ = false;
};

void Server::accept()
{
    if (stopped)
        return;
    acceptor.async_accept(strand, [self = shared_from_this()](const beast::error_code& ec, tcp::socket socket) {
        guarded("accept", [&] { self->onAccept(ec, std::move(socket)); });
    });
}

void Server::onAccept(const beast::error_code& ec, tcp::socket socket)
{
    if (stopped)
        return;
    if (ec) {
        log::warning("metrics: accept: ", ec.message());
        retryTimer.expires_after(kAcceptRetryDelay);
        retryTimer.async_wait([self = shared_from_this()](const beast::error_code& waitError) {
            guarded("accept", [&] {
                if (!waitError)
                    self->accept();
            });
        });
        return;
    }
    // Re-arm first: whatever happens to this connection, the server keeps accepting.
    accept();
    if (connections.size() >= options.maxConnections) {
        log::debug("metrics: too many open connections, closing a new one");
        beast::error_code ignored;
        socket.close(ignored);
        return;
    }
    auto connection = std::make_shared<Connection>(shared_from_this(), std::move(socket));
    connections.insert(connection.get());
    connection->start();
}

void Server::stop()
{
    if (stopped)
        return;
    stopped = true;
    beast::error_code ignored;
    acceptor.close(ignored);
    retryTimer.cancel();
    // close() erases from `connections`: iterate over a copy. The pointers are alive: a
    // connection leaves the set (in close) before it can be destroyed.
    const std::vector<Connection*> open(connections.begin(), connections.end());
    for (Connection* c : open)
        c->close();
}

}  // namespace

struct MetricsServer::Impl {
    std::shared_ptr<Server> server;
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(asio::io_context& io, Options options, RenderFn render)
{
    auto endpoint = parseListen(options.listen);
    if (!endpoint)
        return endpoint.status();
    if (options.maxRequestBytes == 0 || options.maxConnections == 0 || options.timeout.count() <= 0)
        return Status::invalid("metrics server: limits must be positive");

    const std::string listen = options.listen;
    auto server = std::make_shared<Server>(io, std::move(options), std::move(render));
    beast::error_code ec;
    const auto failed = [&](std::string_view step) {
        return Status::error(StatusCode::kUnavailable,
                             "metrics: cannot listen on " + listen + ": " + std::string(step) + ": " + ec.message());
    };
    server->acceptor.open(endpoint->protocol(), ec);
    if (ec)
        return failed("socket");
    // A restarted daemon must not wait for the old connections' TIME_WAIT to expire.
    server->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (ec)
        return failed("SO_REUSEADDR");
    server->acceptor.bind(*endpoint, ec);
    if (ec)
        return failed("bind");
    server->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return failed("listen");
    const auto local = server->acceptor.local_endpoint(ec);
    if (ec)
        return failed("getsockname");

    asio::dispatch(server->strand, [server] { guarded("accept", [&] { server->accept(); }); });

    std::unique_ptr<MetricsServer> result(new MetricsServer(std::make_unique<Impl>(Impl{server})));
    result->port_ = local.port();
    result->address_ = formatEndpoint(local);
    log::info("metrics: serving http://", result->address_, "/metrics");
    return result;
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop()
{
    if (!impl_)
        return;
    auto server = impl_->server;
    asio::dispatch(server->strand, [server] { guarded("stop", [&] { server->stop(); }); });
}

}  // namespace sluice::service
