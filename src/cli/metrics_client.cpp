#include "cli/metrics_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace sluice::cli {
namespace {

constexpr size_t kMaxResponseBytes = 64u << 20;

struct Url {
    std::string host;
    std::string port = "80";
    std::string path = "/";
};

Result<Url> parseUrl(const std::string& url)
{
    constexpr std::string_view kScheme = "http://";
    if (url.rfind(kScheme, 0) != 0)
        return Status::invalid("'" + url + "': only http:// URLs are supported");
    std::string_view rest = std::string_view(url).substr(kScheme.size());
    const size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    Url u;
    if (slash != std::string_view::npos)
        u.path = std::string(rest.substr(slash));
    if (!authority.empty() && authority.front() == '[') {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos)
            return Status::invalid("'" + url + "': unterminated [IPv6] address");
        u.host = std::string(authority.substr(1, close - 1));
        authority.remove_prefix(close + 1);
        if (!authority.empty()) {
            if (authority.front() != ':')
                return Status::invalid("'" + url + "': unexpected text after the address");
            u.port = std::string(authority.substr(1));
        }
    } else {
        const size_t colon = authority.rfind(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos)
            u.port = std::string(authority.substr(colon + 1));
    }
    if (u.host.empty() || u.port.empty() || u.port.find_first_not_of("0123456789") != std::string::npos)
        return Status::invalid("'" + url + "': expected http://host:port/path");
    return u;
}

bool parseNumber(std::string_view text, double& out)
{
    if (text == "+Inf" || text == "Inf") {
        out = std::numeric_limits<double>::infinity();
        return true;
    }
    if (text == "-Inf") {
        out = -std::numeric_limits<double>::infinity();
        return true;
    }
    if (text == "NaN") {
        out = std::numeric_limits<double>::quiet_NaN();
        return true;
    }
    const std::string s(text);
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end != s.c_str() && *end == '\0';
}

bool hasLabels(const Sample& s, const Labels& wanted)
{
    for (const auto& w : wanted) {
        bool found = false;
        for (const auto& l : s.labels)
            found |= (l == w);
        if (!found)
            return false;
    }
    return true;
}

}  // namespace

Result<HttpResponse> httpGet(const std::string& url, int timeoutMs)
{
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;

    auto u = parseUrl(url);
    if (!u)
        return u.status();
    asio::io_context ioc;
    asio::ip::tcp::resolver resolver(ioc);
    beast::error_code ec;
    const auto endpoints = resolver.resolve(u->host, u->port, ec);
    if (ec)
        return Status::invalid("cannot resolve " + u->host + ": " + ec.message());

    const std::string host = u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host;
    http::request<http::empty_body> request{http::verb::get, u->path, 10};
    request.set(http::field::host, host + ":" + u->port);
    request.set(http::field::user_agent, "sluicectl");
    request.set(http::field::accept, "text/plain");
    request.set(http::field::connection, "close");
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBytes);
    beast::flat_buffer buffer;

    // One deadline for connecting, sending and reading: the stream cancels whatever is pending.
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::milliseconds(timeoutMs));
    beast::error_code failure;
    bool connected = false;
    stream.async_connect(endpoints, [&](beast::error_code e, const asio::ip::tcp::endpoint&) {
        if (e) {
            failure = e;
            return;
        }
        connected = true;
        http::async_write(stream, request, [&](beast::error_code e, size_t) {
            if (e) {
                failure = e;
                return;
            }
            http::async_read(stream, buffer, parser, [&](beast::error_code e, size_t) { failure = e; });
        });
    });
    ioc.run();

    if (failure == beast::error::timeout)
        return Status::ioError("no complete answer from " + url + " within " + std::to_string(timeoutMs) + " ms");
    if (!connected && failure == asio::error::connection_refused)
        return Status::error(StatusCode::kUnavailable, "connection refused by " + u->host + ":" + u->port);
    if (!connected)
        return Status::ioError("cannot connect to " + u->host + ":" + u->port + ": " + failure.message());
    if (failure == http::error::body_limit)
        return Status::ioError("the response from " + url + " is larger than 64 MiB");
    if (failure && failure.category() == http::make_error_code(http::error::end_of_stream).category())
        return Status::ioError(url + " did not answer with HTTP (" + failure.message() + ")");
    if (failure)
        return Status::ioError("reading the response from " + url + ": " + failure.message());
    HttpResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    out.body = std::move(parser.get().body());
    return out;
}

Result<Scrape> Scrape::parse(std::string_view text)
{
    Scrape scrape;
    size_t pos = 0;
    size_t lineNo = 0;
    while (pos < text.size()) {
        size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos)
            eol = text.size();
        std::string_view line = text.substr(pos, eol - pos);
        pos = eol + 1;
        ++lineNo;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
            line.remove_suffix(1);
        if (line.empty() || line.front() == '#')
            continue;
        auto bad = [&](const char* why) {
            return Status::invalid("metrics line " + std::to_string(lineNo) + ": " + why);
        };
        Sample s;
        size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ' && line[i] != '\t')
            ++i;
        s.name = std::string(line.substr(0, i));
        if (s.name.empty())
            return bad("no metric name");
        if (i < line.size() && line[i] == '{') {
            ++i;
            for (;;) {
                while (i < line.size() && (line[i] == ' ' || line[i] == ','))
                    ++i;
                if (i < line.size() && line[i] == '}') {
                    ++i;
                    break;
                }
                const size_t eq = line.find('=', i);
                if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"')
                    return bad("malformed label");
                std::string name(line.substr(i, eq - i));
                std::string value;
                i = eq + 2;
                bool closed = false;
                while (i < line.size()) {
                    const char c = line[i++];
                    if (c == '\\' && i < line.size()) {
                        const char e = line[i++];
                        value += e == 'n' ? '\n' : e;
                    } else if (c == '"') {
                        closed = true;
                        break;
                    } else {
                        value += c;
                    }
                }
                if (!closed)
                    return bad("unterminated label value");
                s.labels.emplace_back(std::move(name), std::move(value));
            }
        }
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
            ++i;
        std::string_view rest = line.substr(i);
        const size_t end = rest.find_first_of(" \t");
        if (!parseNumber(rest.substr(0, end), s.value))
            return bad("the value is not a number");
        scrape.samples_.push_back(std::move(s));
    }
    return scrape;
}

std::optional<double> Scrape::value(std::string_view name, const Labels& labels) const
{
    for (const Sample& s : samples_)
        if (s.name == name && hasLabels(s, labels))
            return s.value;
    return std::nullopt;
}

double Scrape::sum(std::string_view name) const
{
    double total = 0;
    for (const Sample& s : samples_)
        if (s.name == name)
            total += s.value;
    return total;
}

std::vector<const Sample*> Scrape::series(std::string_view name) const
{
    std::vector<const Sample*> out;
    for (const Sample& s : samples_)
        if (s.name == name)
            out.push_back(&s);
    return out;
}

std::optional<double> Scrape::quantile(std::string_view name, double q) const
{
    std::vector<std::pair<double, double>> buckets;  // (upper bound, cumulative count)
    const std::string bucketName = std::string(name) + "_bucket";
    for (const Sample& s : samples_) {
        if (s.name != bucketName)
            continue;
        for (const auto& [k, v] : s.labels) {
            double le = 0;
            if (k == "le" && parseNumber(v, le))
                buckets.emplace_back(le, s.value);
        }
    }
    if (buckets.empty())
        return std::nullopt;
    std::sort(buckets.begin(), buckets.end());
    const double total = buckets.back().second;
    if (!(total > 0))
        return std::nullopt;
    const double rank = std::clamp(q, 0.0, 1.0) * total;
    double lower = 0, below = 0;
    for (const auto& [upper, count] : buckets) {
        if (count >= rank) {
            if (std::isinf(upper))
                return lower;  // past the last finite bound: that bound is all that is known
            if (count == below)
                return upper;
            return lower + (upper - lower) * (rank - below) / (count - below);
        }
        lower = upper;
        below = count;
    }
    return lower;
}

}  // namespace sluice::cli
