// A minimal HTTP/1.1 server for the metrics endpoint, on the daemon's own io_context.
//
//   GET /metrics  -> 200, Content-Type: text/plain; version=0.0.4; charset=utf-8, body = render()
//   GET /healthz  -> 200, body "ok"
//   GET other     -> 404;   any other method -> 405 (Allow: GET)
//
// One request per connection (the response carries `Connection: close`). Each connection has a
// deadline for reading the request and writing the response, and a cap on the request's size;
// the number of open connections is capped too. Errors in a connection are logged and close that
// connection; nothing throws out of the io_context's handlers. Boost.Beast stays inside
// metrics_server.cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace boost::asio {
class io_context;
}

namespace sluice::service {

class MetricsServer {
public:
    struct Options {
        // "host:port": an IPv4 literal, a bracketed IPv6 literal ("[::1]:9464") or "localhost"
        // (127.0.0.1; no resolver is used). Port 0 binds an ephemeral port; see port().
        std::string listen = "127.0.0.1:9464";
        std::chrono::milliseconds timeout{5000};  // read the request + write the response
        std::size_t maxRequestBytes = 8192;       // request line + headers (+ any body)
        std::size_t maxConnections = 16;          // beyond this, new connections are closed
    };

    // Produces the /metrics body; called on a thread running the io_context. May throw: the
    // request then gets a 500 and the error is logged.
    using RenderFn = std::function<std::string()>;

    // Binds and starts accepting on `io`; requests are served as `io` runs (on any number of
    // threads: the server's handlers are serialized on a strand). An invalid address is
    // kInvalidArgument, a failure to bind kUnavailable. `io` and `render` must outlive the
    // server's last handler: stop() the server, and let `io` run or be destroyed, before they go.
    static Result<std::unique_ptr<MetricsServer>> start(boost::asio::io_context& io, Options options,
                                                        RenderFn render);

    // Stops (stop()); handlers still queued in the io_context keep the internals alive until
    // they have run or the io_context is destroyed.
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // The bound port (the ephemeral one when Options::listen asked for port 0).
    uint16_t port() const { return port_; }
    // The bound address as "127.0.0.1:9464" or "[::1]:9464".
    const std::string& address() const { return address_; }

    // Closes the listening socket and every open connection. Thread-safe and idempotent; the work
    // is dispatched to the io_context, so it takes effect when (or, on its thread, as) it runs.
    void stop();

private:
    struct Impl;
    explicit MetricsServer(std::unique_ptr<Impl> impl);

    std::unique_ptr<Impl> impl_;
    uint16_t port_ = 0;
    std::string address_;
};

}  // namespace sluice::service
