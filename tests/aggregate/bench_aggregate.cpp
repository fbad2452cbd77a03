// Throughput of Aggregator::add/flush on the reference workload's aggregation, of the sketch
// operations the SQL writer runs per merged row, and the estimator's error by cardinality.
// Prints figures; asserts nothing. `meson test --benchmark` or run it directly.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "aggregate/aggregator.h"
#include "aggregate/hyper_log_log.h"
#include "aggregate/siphash.h"
#include "fixtures.h"

using namespace sluice;
using namespace sluice::aggregate;
using namespace sluice::aggregate::testing;

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs `f` `reps` times and returns the best time of one run, in seconds.
template <typename F>
double best(int reps, F&& f)
{
    double b = 1e30;
    for (int r = 0; r < reps; ++r) {
        auto start = Clock::now();
        f();
        b = std::min(b, secondsSince(start));
    }
    return b;
}

volatile double gSink;  // keeps results alive

void benchAggregator()
{
    // The reference workload: 30 countries, 20,000 customers, totals, consent mix; event times
    // advancing at 250k events/s; batches of 10,000 events.
    constexpr size_t kEvents = 1'000'000;
    constexpr size_t kBatch = 10'000;
    std::mt19937_64 rng(7);
    std::vector<std::string> countries, customers;
    for (int i = 0; i < 30; ++i)
        countries.push_back(std::string{static_cast<char>('A' + i % 26), static_cast<char>('A' + i / 26)});
    for (int i = 0; i < 20'000; ++i)
        customers.push_back("c-" + std::to_string(100000 + i));
    const ConsentMask consents[] = {0b111, 0b11, 0b1, 0};
    // Field values come from a pool of 4096 events (in the pipeline a batch's values are hot from
    // parsing; a million distinct events would measure cache misses on the benchmark's own data).
    struct Event {
        ConsentMask consent;
        std::vector<Value> fields;
    };
    constexpr size_t kPool = 4096;
    std::vector<Event> pool(kPool);
    for (Event& e : pool) {
        unsigned r = rng() % 10;
        e.consent = consents[r < 4 ? 0 : r < 7 ? 1 : r < 9 ? 2 : 3];
        e.fields.resize(12);
        e.fields[kCountry] = Value::ofString(countries[rng() % countries.size()]);
        e.fields[kTotal] = Value::ofReal(static_cast<double>(rng() % 20000) / 100.0);
        e.fields[kItems] = Value::ofInt(static_cast<int64_t>(rng() % 10));
    }
    // 100,000 sessions, as in the reference workload: the session windows below keep them all open.
    std::vector<std::string> sessions;
    for (int i = 0; i < 100'000; ++i)
        sessions.push_back("s-" + std::to_string(1000000 + i));
    std::vector<uint32_t> sessionOf(kEvents);
    std::vector<uint16_t> customerOf(kEvents);
    std::vector<int64_t> times(kEvents);
    const int64_t t0 = 1763712000000;
    for (size_t i = 0; i < kEvents; ++i) {
        customerOf[i] = static_cast<uint16_t>(rng() % customers.size());
        sessionOf[i] = static_cast<uint32_t>(rng() % sessions.size());
        times[i] = t0 + static_cast<int64_t>(i / 250) - static_cast<int64_t>(rng() % 200);  // some disorder
    }

    struct Variant {
        const char* what;
        AggregationSpec spec;
    };
    AggregationSpec noDistinct = revenueByCountry();
    noDistinct.metrics.pop_back();
    AggregationSpec sliding = revenueByCountry();  // 5 windows per event
    sliding.window = WindowKind::kSliding;
    sliding.windowMs = 300'000;
    sliding.slideMs = 60'000;
    AggregationSpec session = revenueByCountry();  // one open session per session id
    session.window = WindowKind::kSession;
    session.gapMs = 1'800'000;
    session.groupBy = {"session_id"};
    Variant variants[] = {{"revenue_by_country (count, sum, distinct)", revenueByCountry()},
                          {"count and sum only", noDistinct},
                          {"every metric", everyMetric(60'000, 5'000)},
                          {"the same, sliding 5m every 1m", sliding},
                          {"the same, session 30m by 100k session_id", session}};
    std::printf("Aggregator, %zu events in batches of %zu, 1m windows, group by 30 countries:\n", kEvents, kBatch);
    for (Variant& v : variants) {
        double addSeconds = 0;
        double flushSeconds = 0;
        size_t rows = 0;
        for (int rep = 0; rep < 3; ++rep) {
            auto made = Aggregator::create(v.spec, checkoutContract(), kHashKey);
            Aggregator a = std::move(made.value());
            double adds = 0;
            double flushes = 0;
            rows = 0;
            for (size_t i = 0; i < kEvents; i += kBatch) {
                auto start = Clock::now();
                for (size_t k = i; k < i + kBatch; ++k) {
                    Event& e = pool[k % kPool];
                    e.fields[kCustomer] = Value::ofString(customers[customerOf[k]]);
                    e.fields[kSession] = Value::ofString(sessions[sessionOf[k]]);
                    a.add(times[k], e.consent, e.fields);
                }
                adds += secondsSince(start);
                Arena arena;
                WriteBatch out;
                start = Clock::now();
                rows += a.flush(arena, out).groupRows;
                flushes += secondsSince(start);
            }
            if (rep == 0 || adds + flushes < addSeconds + flushSeconds) {
                addSeconds = adds;
                flushSeconds = flushes;
            }
        }
        const double batches = static_cast<double>(kEvents / kBatch);
        std::printf("  %-44s add %6.2f M events/s; flush %6.1f us/batch (%zu rows/batch); add+flush %6.2f M events/s\n",
                    v.what, static_cast<double>(kEvents) / addSeconds / 1e6, flushSeconds / batches * 1e6,
                    rows / (kEvents / kBatch), static_cast<double>(kEvents) / (addSeconds + flushSeconds) / 1e6);
    }
}

std::vector<uint64_t> hashes(uint64_t seed, size_t n)
{
    std::array<uint8_t, kSipKeyBytes> key{};
    std::memcpy(key.data(), &seed, sizeof seed);
    SipHash24 hash(key);
    std::vector<uint64_t> out(n);
    char buf[8];
    for (size_t i = 0; i < n; ++i) {
        uint64_t v = i;
        std::memcpy(buf, &v, 8);
        out[i] = hash(std::string_view(buf, 8));
    }
    return out;
}

void benchSketches()
{
    std::printf("\nHyperLogLog (p=14), per operation:\n");
    const std::vector<uint64_t> many = hashes(1, 1'000'000);

    double addSeconds = best(5, [&] {
        HyperLogLog h;
        for (uint64_t x : many)
            h.add(x);
        gSink = h.isDense();
    });
    std::printf("  add (into a dense sketch)                       %8.1f M/s\n", 1e-6 * static_cast<double>(many.size()) / addSeconds);
    double sparseAdd = best(5, [&] {
        for (size_t i = 0; i + 300 <= 300'000; i += 300) {
            HyperLogLog h;
            for (size_t k = i; k < i + 300; ++k)
                h.add(many[k]);
            h.compact();
            gSink = h.isDense();
        }
    });
    std::printf("  add (300 values into a sparse sketch)           %8.1f M/s\n", 1e-6 * 300'000 / sparseAdd);
    std::string buffer;
    SipHash24 key(std::array<uint8_t, kSipKeyBytes>{});
    double sipSeconds = best(5, [&] {
        uint64_t acc = 0;
        for (size_t i = 0; i < 1'000'000; ++i)
            acc += key(std::string_view("sc-123456", 9));
        gSink = static_cast<double>(acc);
    });
    std::printf("  SipHash-2-4 of a 9-byte value                   %8.1f M/s\n", 1.0 / sipSeconds);

    HyperLogLog denseA, denseB, partial;
    for (size_t i = 0; i < 200'000; ++i)
        denseA.add(many[i]);
    for (size_t i = 100'000; i < 300'000; ++i)
        denseB.add(many[i]);
    for (size_t i = 500'000; i < 500'300; ++i)
        partial.add(many[i]);
    partial.compact();  // as Aggregator::flush does
    const std::string denseBlob = denseA.serialize();
    const std::string partialBlob = partial.serialize();
    std::printf("  (a dense blob is %zu bytes; a partial of 300 values %zu bytes)\n", denseBlob.size(), partialBlob.size());

    auto perOp = [&](const char* what, int n, auto&& f) {
        double s = best(5, [&] {
            for (int i = 0; i < n; ++i)
                f();
        });
        std::printf("  %-47s %8.2f us\n", what, s / n * 1e6);
    };
    perOp("merge dense + dense (in memory)", 2000, [&] {
        HyperLogLog m = denseA;
        m.merge(denseB);
        gSink = m.isDense();
    });
    perOp("estimate dense", 2000, [&] { gSink = denseA.estimate(); });
    perOp("estimate sparse (300 values)", 20000, [&] { gSink = partial.estimate(); });
    perOp("serialize dense", 2000, [&] {
        buffer.clear();
        denseA.serialize(buffer);
        gSink = static_cast<double>(buffer.size());
    });
    perOp("parse dense", 2000, [&] { gSink = HyperLogLog::parse(denseBlob)->isDense(); });
    perOp("parse sparse (300 values)", 20000, [&] { gSink = HyperLogLog::parse(partialBlob)->isDense(); });
    perOp("sluice_hll_merge(dense, sparse 300)", 2000, [&] {
        gSink = static_cast<double>(mergeSerialized(denseBlob, partialBlob)->size());
    });
    perOp("sluice_hll_merge(sparse 300, sparse 300)", 20000, [&] {
        gSink = static_cast<double>(mergeSerialized(partialBlob, partialBlob)->size());
    });
    perOp("sluice_hll_estimate(dense)", 2000, [&] { gSink = *estimateSerialized(denseBlob); });

    // The alternative dense form, one byte per register: its parse is a copy plus a range check.
    std::string byteForm(1 + HyperLogLog::kRegisters, '\0');
    for (uint32_t i = 0; i < HyperLogLog::kRegisters; ++i)
        byteForm[1 + i] = static_cast<char>(denseA.registerValue(i));
    perOp("(8-bit alternative: copy + range check)", 2000, [&] {
        std::vector<uint8_t> regs(HyperLogLog::kRegisters);
        std::memcpy(regs.data(), byteForm.data() + 1, regs.size());
        gSink = *std::max_element(regs.begin(), regs.end());
    });
}

void errorTable()
{
    std::printf("\nHyperLogLog relative error (estimate/true - 1), 20 key seeds per cardinality:\n");
    std::printf("  %10s %10s %10s %10s\n", "distinct", "mean", "rms", "max |err|");
    for (size_t n : {100, 1'000, 10'000, 100'000, 1'000'000, 10'000'000}) {
        const int seeds = n >= 10'000'000 ? 5 : 20;
        double sum = 0, sumSq = 0, worst = 0;
        for (int s = 0; s < seeds; ++s) {
            HyperLogLog h;
            std::array<uint8_t, kSipKeyBytes> key{};
            key[0] = static_cast<uint8_t>(s);
            key[1] = 0x5a;
            SipHash24 hash(key);
            char buf[8];
            for (uint64_t i = 0; i < n; ++i) {
                std::memcpy(buf, &i, 8);
                h.add(hash(std::string_view(buf, 8)));
            }
            double err = h.estimate() / static_cast<double>(n) - 1.0;
            sum += err;
            sumSq += err * err;
            worst = std::max(worst, std::abs(err));
        }
        std::printf("  %10zu %+9.3f%% %9.3f%% %9.3f%%%s\n", n, 100 * sum / seeds, 100 * std::sqrt(sumSq / seeds),
                    100 * worst, seeds != 20 ? "  (5 seeds)" : "");
    }
}

}  // namespace

// With arguments, runs only the named parts: aggregator, sketches, errors.
int main(int argc, char** argv)
{
    auto wanted = [&](const char* part) {
        if (argc < 2)
            return true;
        for (int i = 1; i < argc; ++i)
            if (std::strcmp(argv[i], part) == 0)
                return true;
        return false;
    };
    if (wanted("aggregator"))
        benchAggregator();
    if (wanted("sketches"))
        benchSketches();
    if (wanted("errors"))
        errorTable();
    return 0;
}
