// What sluicectl status needs to read the daemon's metrics endpoint: an HTTP GET through
// Boost.Beast (the endpoint is loopback HTTP; no TLS, proxies or redirects), and a parser for
// the Prometheus text format (0.0.4) with histogram quantiles.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sluice::cli {

struct HttpResponse {
    int status = 0;
    std::string body;
};

// GET `url` ("http://host[:port][/path]"; host may be a name, an IPv4 literal or "[v6]"), one
// request per connection, within `timeoutMs` overall. kUnavailable when the connection is refused
// (nothing listens there), kIoError for timeouts and other socket errors, kInvalidArgument for a
// URL this client cannot fetch. Bodies over 64 MiB are refused.
Result<HttpResponse> httpGet(const std::string& url, int timeoutMs);

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Sample {
    std::string name;  // with any _bucket/_sum/_count suffix
    Labels labels;
    double value = 0;
};

class Scrape {
public:
    // Parses exposition text; comment lines are skipped. kInvalidArgument names the bad line.
    static Result<Scrape> parse(std::string_view text);

    const std::vector<Sample>& samples() const { return samples_; }
    // The value of the first series of `name` whose labels include every pair of `labels`.
    std::optional<double> value(std::string_view name, const Labels& labels = {}) const;
    // The sum over every series of `name`.
    double sum(std::string_view name) const;
    // Every series of `name`.
    std::vector<const Sample*> series(std::string_view name) const;
    // The q-quantile (0..1) of histogram `name` (series name_bucket with "le"), interpolated
    // linearly inside the bucket as Prometheus' histogram_quantile does; nullopt without
    // observations.
    std::optional<double> quantile(std::string_view name, double q) const;

private:
    std::vector<Sample> samples_;
};

}  // namespace sluice::cli
