#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "service/metrics.h"

using namespace sluice::service;

TEST_CASE("a small registry renders in the exposition format, exactly", "[metrics]")
{
    Registry registry;
    auto& received = registry.counter("sluice_events_received_total", "Events received.");
    auto& notJson = registry.counter("sluice_events_rejected_total", "Events rejected, by reason.",
                                     {{"reason", "not_json"}});
    auto& tooLarge = registry.counter("sluice_events_rejected_total", "Events rejected, by reason.",
                                      {{"reason", "too_large"}});
    auto& depth = registry.gauge("sluice_queue_depth", "Items waiting in a queue.", {{"queue", "commit"}});
    auto& commit = registry.histogram("sluice_commit_seconds", "Commit latency.", {0.5, 1, 2.5});

    received.inc(5);
    notJson.inc();
    tooLarge.inc(2);
    depth.set(3);
    commit.observe(0.25);
    commit.observe(0.5);  // on a bound: counted in that bucket (le = less or equal)
    commit.observe(4);

    CHECK(registry.render() ==
          "# HELP sluice_events_received_total Events received.\n"
          "# TYPE sluice_events_received_total counter\n"
          "sluice_events_received_total 5\n"
          "# HELP sluice_events_rejected_total Events rejected, by reason.\n"
          "# TYPE sluice_events_rejected_total counter\n"
          "sluice_events_rejected_total{reason=\"not_json\"} 1\n"
          "sluice_events_rejected_total{reason=\"too_large\"} 2\n"
          "# HELP sluice_queue_depth Items waiting in a queue.\n"
          "# TYPE sluice_queue_depth gauge\n"
          "sluice_queue_depth{queue=\"commit\"} 3\n"
          "# HELP sluice_commit_seconds Commit latency.\n"
          "# TYPE sluice_commit_seconds histogram\n"
          "sluice_commit_seconds_bucket{le=\"0.5\"} 2\n"
          "sluice_commit_seconds_bucket{le=\"1\"} 2\n"
          "sluice_commit_seconds_bucket{le=\"2.5\"} 2\n"
          "sluice_commit_seconds_bucket{le=\"+Inf\"} 3\n"
          "sluice_commit_seconds_sum 4.75\n"
          "sluice_commit_seconds_count 3\n");
}

TEST_CASE("an empty registry renders nothing", "[metrics]")
{
    Registry registry;
    CHECK(registry.render().empty());
}

TEST_CASE("labelled histograms put le last; label values and HELP are escaped", "[metrics]")
{
    Registry registry;
    auto& size = registry.histogram("batch_events", "Events per batch.\nBack\\slash.", {10, 100},
                                    {{"pipeline", "a\"b\\c\nd"}});
    size.observe(50);
    size.observe(1000);
    CHECK(registry.render() ==
          "# HELP batch_events Events per batch.\\nBack\\\\slash.\n"
          "# TYPE batch_events histogram\n"
          "batch_events_bucket{pipeline=\"a\\\"b\\\\c\\nd\",le=\"10\"} 0\n"
          "batch_events_bucket{pipeline=\"a\\\"b\\\\c\\nd\",le=\"100\"} 1\n"
          "batch_events_bucket{pipeline=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 2\n"
          "batch_events_sum{pipeline=\"a\\\"b\\\\c\\nd\"} 1050\n"
          "batch_events_count{pipeline=\"a\\\"b\\\\c\\nd\"} 2\n");
}

TEST_CASE("gauges render integers, fractions, negatives and infinities", "[metrics]")
{
    Registry registry;
    auto& g = registry.gauge("g", "A gauge.", {{"k", "v"}});
    CHECK(registry.render() == "# HELP g A gauge.\n# TYPE g gauge\ng{k=\"v\"} 0\n");
    g.set(-1.5);
    CHECK(registry.render() == "# HELP g A gauge.\n# TYPE g gauge\ng{k=\"v\"} -1.5\n");
    g.add(0.25);
    g.sub(1);
    CHECK(g.value() == -2.25);
    g.set(1763712000.123);
    CHECK(registry.render() == "# HELP g A gauge.\n# TYPE g gauge\ng{k=\"v\"} 1763712000.123\n");
    g.set(std::numeric_limits<double>::infinity());
    CHECK(registry.render() == "# HELP g A gauge.\n# TYPE g gauge\ng{k=\"v\"} +Inf\n");
    g.set(std::nan(""));
    CHECK(registry.render() == "# HELP g A gauge.\n# TYPE g gauge\ng{k=\"v\"} NaN\n");
}

TEST_CASE("registering a metric again returns the same one; labels are sorted by name", "[metrics]")
{
    Registry registry;
    auto& a = registry.counter("c_total", "C.", {{"z", "1"}, {"a", "2"}});
    auto& b = registry.counter("c_total", "C.", {{"a", "2"}, {"z", "1"}});
    CHECK(&a == &b);
    auto& other = registry.counter("c_total", "C.", {{"a", "3"}, {"z", "1"}});
    CHECK(&other != &a);
    a.inc();
    CHECK(registry.render() ==
          "# HELP c_total C.\n# TYPE c_total counter\n"
          "c_total{a=\"2\",z=\"1\"} 1\n"
          "c_total{a=\"3\",z=\"1\"} 0\n");
}

TEST_CASE("registration refuses what Prometheus would not parse", "[metrics]")
{
    Registry registry;
    registry.counter("ok_total", "Fine.");
    registry.histogram("h", "H.", {1, 2});

    CHECK_THROWS_AS(registry.counter("", "x"), std::invalid_argument);
    CHECK_THROWS_AS(registry.counter("1abc", "x"), std::invalid_argument);
    CHECK_THROWS_AS(registry.counter("a-b", "x"), std::invalid_argument);
    CHECK_THROWS_AS(registry.counter("x_total", "x", {{"bad-label", "v"}}), std::invalid_argument);
    CHECK_THROWS_AS(registry.counter("x_total", "x", {{"__reserved", "v"}}), std::invalid_argument);
    CHECK_THROWS_AS(registry.counter("x_total", "x", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
    CHECK_THROWS_AS(registry.gauge("ok_total", "Fine."), std::invalid_argument);   // type differs
    CHECK_THROWS_AS(registry.counter("ok_total", "Other."), std::invalid_argument);  // HELP differs
    CHECK_THROWS_AS(registry.histogram("h", "H.", {1, 3}), std::invalid_argument);  // bounds differ
    CHECK_THROWS_AS(registry.histogram("h2", "H.", {1}, {{"le", "x"}}), std::invalid_argument);
    CHECK_THROWS_AS(registry.histogram("h3", "H.", {}), std::invalid_argument);
    CHECK_THROWS_AS(registry.histogram("h4", "H.", {2, 1}), std::invalid_argument);
    CHECK_THROWS_AS(registry.histogram("h5", "H.", {1, std::numeric_limits<double>::infinity()}),
                    std::invalid_argument);
    CHECK_NOTHROW(registry.counter("name:with_colon_total", "Colons are allowed in names."));
}

TEST_CASE("exponentialBuckets multiplies from a start", "[metrics]")
{
    CHECK(exponentialBuckets(1, 2, 4) == std::vector<double>{1, 2, 4, 8});
    CHECK(exponentialBuckets(0.001, 10, 3).size() == 3);
    CHECK_THROWS_AS(exponentialBuckets(0, 2, 4), std::invalid_argument);
    CHECK_THROWS_AS(exponentialBuckets(1, 1, 4), std::invalid_argument);
    CHECK_THROWS_AS(exponentialBuckets(1, 2, 0), std::invalid_argument);
}

TEST_CASE("histogram ignores NaN and counts infinities in +Inf", "[metrics]")
{
    Histogram h({1});
    h.observe(std::nan(""));
    h.observe(-std::numeric_limits<double>::infinity());
    h.observe(std::numeric_limits<double>::infinity());
    CHECK(h.bucketCounts() == std::vector<uint64_t>{1, 1});
}

TEST_CASE("concurrent increments and observations are all counted", "[metrics]")
{
    Registry registry;
    auto& counter = registry.counter("n_total", "N.");
    auto& histogram = registry.histogram("v", "V.", {1, 2, 3});
    constexpr int kThreads = 4;
    constexpr int kPerThread = 25000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < kPerThread; ++i) {
                counter.inc();
                histogram.observe(static_cast<double>(i % 4));  // 0, 1, 2, 3: exact sums
            }
        });
    }
    std::string scraped;
    for (int i = 0; i < 20; ++i)
        scraped = registry.render();  // races with the writers; must not tear or crash
    for (auto& t : threads)
        t.join();

    CHECK(counter.value() == kThreads * kPerThread);
    const auto counts = histogram.bucketCounts();
    const uint64_t quarter = kThreads * kPerThread / 4;
    CHECK(counts == std::vector<uint64_t>{2 * quarter, quarter, quarter, 0});
    CHECK(histogram.sum() == 6.0 * quarter);
}
