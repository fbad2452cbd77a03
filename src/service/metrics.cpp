#include "service/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace sluice::service {
namespace {

bool isMetricName(std::string_view name)
{
    if (name.empty())
        return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0))
            return false;
    }
    return true;
}

bool isLabelName(std::string_view name)
{
    if (name.empty() || name.find(':') != std::string_view::npos || name.substr(0, 2) == "__")
        return false;
    return isMetricName(name);
}

void appendDouble(std::string& out, double v)
{
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[32];
    // Shortest text that reads back as the same double: 1, 0.25, 1e+21.
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, ec == std::errc() ? end : buf);
}

void appendUint(std::string& out, uint64_t v)
{
    char buf[24];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, ec == std::errc() ? end : buf);
}

// HELP text: backslash and newline escaped.
void appendHelp(std::string& out, std::string_view help)
{
    for (char c : help) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

// Label value: backslash, double quote and newline escaped.
void appendLabelValue(std::string& out, std::string_view value)
{
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

void checkBounds(const std::vector<double>& bounds)
{
    if (bounds.empty())
        throw std::invalid_argument("histogram: no bucket bounds");
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        if (!std::isfinite(bounds[i]))
            throw std::invalid_argument("histogram: bucket bounds must be finite (+Inf is implicit)");
        if (i > 0 && !(bounds[i - 1] < bounds[i]))
            throw std::invalid_argument("histogram: bucket bounds must be strictly increasing");
    }
}

}  // namespace

Histogram::Histogram(std::vector<double> upperBounds)
    : bounds_(std::move(upperBounds))
{
    checkBounds(bounds_);
    buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) noexcept
{
    if (std::isnan(v))
        return;
    const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
    buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::bucketCounts() const
{
    std::vector<uint64_t> counts(bounds_.size() + 1);
    for (std::size_t i = 0; i < counts.size(); ++i)
        counts[i] = buckets_[i].load(std::memory_order_relaxed);
    return counts;
}

std::vector<double> exponentialBuckets(double start, double factor, int count)
{
    if (!(start > 0) || !(factor > 1) || count < 1)
        throw std::invalid_argument("exponentialBuckets: need start > 0, factor > 1, count >= 1");
    std::vector<double> bounds;
    bounds.reserve(static_cast<std::size_t>(count));
    for (double b = start; count-- > 0; b *= factor)
        bounds.push_back(b);
    return bounds;
}

struct Registry::Series {
    Labels labels;          // sorted by name
    std::string labelText;  // `a="x",b="y"`, escaped, without braces
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
};

struct Registry::Family {
    std::string name;
    std::string help;
    Kind kind;
    std::vector<double> upperBounds;  // histograms: every series has the same buckets
    std::vector<std::unique_ptr<Series>> series;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Series& Registry::series(std::string_view name, std::string_view help, Kind kind,
                                   const Labels& labels, const std::vector<double>* upperBounds)
{
    const std::string where = "metric " + std::string(name);
    if (!isMetricName(name))
        throw std::invalid_argument(where + ": invalid metric name");

    Labels sorted = labels;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i) {
        if (!isLabelName(sorted[i].first))
            throw std::invalid_argument(where + ": invalid label name '" + sorted[i].first + "'");
        if (i > 0 && sorted[i - 1].first == sorted[i].first)
            throw std::invalid_argument(where + ": duplicate label '" + sorted[i].first + "'");
        if (kind == Kind::kHistogram && sorted[i].first == "le")
            throw std::invalid_argument(where + ": a histogram cannot have a label named 'le'");
    }

    auto found = std::find_if(families_.begin(), families_.end(),
                              [&](const auto& f) { return f->name == name; });
    Family* family = nullptr;
    if (found == families_.end()) {
        auto made = std::make_unique<Family>();
        made->name = std::string(name);
        made->help = std::string(help);
        made->kind = kind;
        if (upperBounds != nullptr) {
            checkBounds(*upperBounds);
            made->upperBounds = *upperBounds;
        }
        family = families_.emplace_back(std::move(made)).get();
    } else {
        family = found->get();
        if (family->kind != kind)
            throw std::invalid_argument(where + ": already registered with another type");
        if (family->help != help)
            throw std::invalid_argument(where + ": already registered with another HELP text");
        if (upperBounds != nullptr && *upperBounds != family->upperBounds)
            throw std::invalid_argument(where + ": already registered with other bucket bounds");
        for (auto& s : family->series) {
            if (s->labels == sorted)
                return *s;
        }
    }

    auto made = std::make_unique<Series>();
    for (const auto& [key, value] : sorted) {
        if (!made->labelText.empty())
            made->labelText += ',';
        made->labelText += key;
        made->labelText += "=\"";
        appendLabelValue(made->labelText, value);
        made->labelText += '"';
    }
    made->labels = std::move(sorted);
    switch (kind) {
    case Kind::kCounter: made->counter = std::make_unique<Counter>(); break;
    case Kind::kGauge: made->gauge = std::make_unique<Gauge>(); break;
    case Kind::kHistogram: made->histogram = std::make_unique<Histogram>(family->upperBounds); break;
    }
    return *family->series.emplace_back(std::move(made));
}

Counter& Registry::counter(std::string_view name, std::string_view help, const Labels& labels)
{
    std::lock_guard lock(mutex_);
    return *series(name, help, Kind::kCounter, labels, nullptr).counter;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, const Labels& labels)
{
    std::lock_guard lock(mutex_);
    return *series(name, help, Kind::kGauge, labels, nullptr).gauge;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               std::vector<double> upperBounds, const Labels& labels)
{
    std::lock_guard lock(mutex_);
    return *series(name, help, Kind::kHistogram, labels, &upperBounds).histogram;
}

std::string Registry::render() const
{
    std::string out;
    std::lock_guard lock(mutex_);
    // Writes `name[suffix]{labels[,extra]} ` (the value follows).
    auto head = [&out](const std::string& name, std::string_view suffix, const std::string& labels,
                       std::string_view extra) {
        out += name;
        out += suffix;
        if (!labels.empty() || !extra.empty()) {
            out += '{';
            out += labels;
            if (!labels.empty() && !extra.empty())
                out += ',';
            out += extra;
            out += '}';
        }
        out += ' ';
    };

    for (const auto& family : families_) {
        out += "# HELP ";
        out += family->name;
        out += ' ';
        appendHelp(out, family->help);
        out += "\n# TYPE ";
        out += family->name;
        switch (family->kind) {
        case Kind::kCounter: out += " counter\n"; break;
        case Kind::kGauge: out += " gauge\n"; break;
        case Kind::kHistogram: out += " histogram\n"; break;
        }

        for (const auto& s : family->series) {
            if (s->counter) {
                head(family->name, "", s->labelText, "");
                appendUint(out, s->counter->value());
                out += '\n';
            } else if (s->gauge) {
                head(family->name, "", s->labelText, "");
                appendDouble(out, s->gauge->value());
                out += '\n';
            } else if (s->histogram) {
                const auto counts = s->histogram->bucketCounts();
                const auto& bounds = s->histogram->upperBounds();
                uint64_t cumulative = 0;
                std::string le;
                for (std::size_t i = 0; i < counts.size(); ++i) {
                    cumulative += counts[i];
                    le = "le=\"";
                    if (i < bounds.size())
                        appendDouble(le, bounds[i]);
                    else
                        le += "+Inf";
                    le += '"';
                    head(family->name, "_bucket", s->labelText, le);
                    appendUint(out, cumulative);
                    out += '\n';
                }
                head(family->name, "_sum", s->labelText, "");
                appendDouble(out, s->histogram->sum());
                out += '\n';
                head(family->name, "_count", s->labelText, "");
                appendUint(out, cumulative);
                out += '\n';
            }
        }
    }
    return out;
}

}  // namespace sluice::service
