// Metrics for the Prometheus text exposition format (version 0.0.4).
//
// Startup registers every metric in a Registry and keeps the returned references; the hot path
// only touches atomics (relaxed: a scrape may see one metric a moment ahead of another, never a
// torn value). Registry::render() produces the text that /metrics serves.
//
//   Registry registry;
//   Counter& received = registry.counter("sluice_events_received_total", "Events received.");
//   Counter& notJson = registry.counter("sluice_events_rejected_total", "Events rejected.",
//                                       {{"reason", "not_json"}});
//   Histogram& commit = registry.histogram("sluice_commit_seconds", "Commit latency.",
//                                          exponentialBuckets(0.0005, 2, 12));
//   received.inc();  commit.observe(0.0031);
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::service {

// A metric's fixed labels: {{"reason", "not_json"}}. Rendered sorted by label name.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A count that only goes up. Any thread.
class Counter {
public:
    void inc(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (queue depth, last commit time). Any thread.
class Gauge {
public:
    void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
    void add(double d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
    void sub(double d) noexcept { value_.fetch_sub(d, std::memory_order_relaxed); }
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> value_{0.0};
};

// Observations counted into fixed buckets. observe() is lock-free; any thread.
class Histogram {
public:
    // `upperBounds`: at least one, finite, strictly increasing; the +Inf bucket is implicit.
    // Throws std::invalid_argument otherwise.
    explicit Histogram(std::vector<double> upperBounds);

    // Counts `v` in the first bucket whose upper bound is >= v. NaN is ignored.
    void observe(double v) noexcept;

    const std::vector<double>& upperBounds() const { return bounds_; }
    // Per bucket (not cumulative), the +Inf bucket last; plus the sum of all observations.
    std::vector<uint64_t> bucketCounts() const;
    double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
    std::atomic<double> sum_{0.0};
};

// `count` bounds: start, start*factor, start*factor^2, ... (start > 0, factor > 1, count >= 1).
std::vector<double> exponentialBuckets(double start, double factor, int count);

// Owns every metric. Registration (startup) and render() are serialized by a mutex; the
// references that registration returns stay valid, and lock-free, for the Registry's lifetime.
//
// A family is one metric name with one HELP text and one type; registering the same name again
// with other labels adds a series to the family, and registering the same name and labels again
// returns the existing metric. Registration throws std::invalid_argument for an invalid metric or
// label name, a duplicate label name, a name already registered with another type or HELP, or
// (histograms) bad bounds or bounds that differ from the family's, or a label named "le".
class Registry {
public:
    Registry();
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
    Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
    Histogram& histogram(std::string_view name, std::string_view help,
                         std::vector<double> upperBounds, const Labels& labels = {});

    // Text exposition format 0.0.4: families in registration order, each with one HELP and one
    // TYPE line, then its series in registration order. Histograms render cumulative
    // `_bucket{le="..."}` series ending with le="+Inf", then `_sum` and `_count`; `_count` always
    // equals the +Inf bucket, even while observations race with the scrape.
    std::string render() const;

private:
    enum class Kind { kCounter, kGauge, kHistogram };
    struct Series;
    struct Family;
    // Finds or creates a series, its metric made. Called with mutex_ held.
    Series& series(std::string_view name, std::string_view help, Kind kind, const Labels& labels,
                   const std::vector<double>* upperBounds);

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Family>> families_;
};

}  // namespace sluice::service
