#include "cli/metrics_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

namespace sluice::cli {
namespace {

constexpr size_t kMaxResponseBytes = 64u << 20;

using SteadyClock = std::chrono::steady_clock;

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

struct AddrInfoFree {
    void operator()(addrinfo* p) const { freeaddrinfo(p); }
};

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

int remainingMs(SteadyClock::time_point deadline)
{
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, std::numeric_limits<int>::max()));
}

// Connects within the deadline; returns the socket, or -1 with `error` set to the last errno.
int connectTo(const addrinfo* ai, SteadyClock::time_point deadline, int& error)
{
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        error = errno;
        return -1;
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        error = errno;
        ::close(fd);
        return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    const int n = ::poll(&p, 1, remainingMs(deadline));
    if (n <= 0) {
        error = n == 0 ? ETIMEDOUT : errno;
        ::close(fd);
        return -1;
    }
    int soError = 0;
    socklen_t len = sizeof soError;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len);
    if (soError != 0) {
        error = soError;
        ::close(fd);
        return -1;
    }
    return fd;
}

Result<std::string> dechunk(std::string_view body)
{
    std::string out;
    size_t pos = 0;
    for (;;) {
        const size_t eol = body.find("\r\n", pos);
        if (eol == std::string_view::npos)
            return Status::ioError("truncated chunked response");
        const std::string sizeText(body.substr(pos, eol - pos));
        char* end = nullptr;
        const unsigned long size = std::strtoul(sizeText.c_str(), &end, 16);
        if (end == sizeText.c_str())
            return Status::ioError("bad chunk size in the response");
        pos = eol + 2;
        if (size == 0)
            return out;
        if (pos + size > body.size())
            return Status::ioError("truncated chunked response");
        out.append(body.substr(pos, size));
        pos += size + 2;
    }
}

bool iequalsPrefix(std::string_view line, std::string_view name)
{
    if (line.size() < name.size())
        return false;
    for (size_t i = 0; i < name.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(line[i])) != std::tolower(static_cast<unsigned char>(name[i])))
            return false;
    return true;
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
    auto u = parseUrl(url);
    if (!u)
        return u.status();
    const auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeoutMs);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* raw = nullptr;
    const int gai = ::getaddrinfo(u->host.c_str(), u->port.c_str(), &hints, &raw);
    std::unique_ptr<addrinfo, AddrInfoFree> addresses(raw);
    if (gai != 0)
        return Status::invalid("cannot resolve " + u->host + ": " + gai_strerror(gai));

    int error = 0;
    int fd = -1;
    bool refusedOnly = true;
    for (const addrinfo* ai = addresses.get(); ai && fd < 0; ai = ai->ai_next) {
        fd = connectTo(ai, deadline, error);
        if (fd < 0 && error != ECONNREFUSED)
            refusedOnly = false;
    }
    if (fd < 0) {
        if (refusedOnly)
            return Status::error(StatusCode::kUnavailable, "connection refused by " + u->host + ":" + u->port);
        return Status::ioError("cannot connect to " + u->host + ":" + u->port + ": " + std::strerror(error));
    }
    Fd socket(fd);

    const std::string hostHeader = u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host;
    const std::string request = "GET " + u->path + " HTTP/1.0\r\nHost: " + hostHeader + ":" + u->port +
                                "\r\nUser-Agent: sluicectl\r\nAccept: text/plain\r\nConnection: close\r\n\r\n";
    std::string_view pending = request;
    std::string response;
    char buffer[16384];
    for (;;) {
        pollfd p{fd, static_cast<short>(pending.empty() ? POLLIN : POLLOUT), 0};
        const int n = ::poll(&p, 1, remainingMs(deadline));
        if (n == 0)
            return Status::ioError("no complete answer from " + url + " within " + std::to_string(timeoutMs) + " ms");
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return Status::ioError(std::string("poll: ") + std::strerror(errno));
        }
        if (!pending.empty()) {
            const ssize_t w = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                return Status::ioError(std::string("sending the request: ") + std::strerror(errno));
            }
            pending.remove_prefix(static_cast<size_t>(w));
            continue;
        }
        const ssize_t r = ::recv(fd, buffer, sizeof buffer, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return Status::ioError(std::string("reading the response: ") + std::strerror(errno));
        }
        if (r == 0)
            break;
        response.append(buffer, static_cast<size_t>(r));
        if (response.size() > kMaxResponseBytes)
            return Status::ioError("the response from " + url + " is larger than 64 MiB");
    }

    const size_t headerEnd = response.find("\r\n\r\n");
    if (response.rfind("HTTP/", 0) != 0 || headerEnd == std::string::npos)
        return Status::ioError(url + " did not answer with HTTP");
    HttpResponse out;
    const size_t space = response.find(' ');
    out.status = std::atoi(response.c_str() + space + 1);
    std::string_view headers = std::string_view(response).substr(0, headerEnd);
    bool chunked = false;
    size_t pos = 0;
    while (pos < headers.size()) {
        size_t eol = headers.find("\r\n", pos);
        if (eol == std::string_view::npos)
            eol = headers.size();
        std::string_view line = headers.substr(pos, eol - pos);
        if (iequalsPrefix(line, "transfer-encoding:") && line.find("chunked") != std::string_view::npos)
            chunked = true;
        pos = eol + 2;
    }
    std::string_view body = std::string_view(response).substr(headerEnd + 4);
    if (chunked) {
        auto decoded = dechunk(body);
        if (!decoded)
            return decoded.status();
        out.body = std::move(*decoded);
    } else {
        out.body = std::string(body);
    }
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
