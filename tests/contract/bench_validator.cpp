// The validator on the reference workload: parse and check N events of acme/checkout/1.0.0 on one
// thread, as a lane of the transform does. Prints the median of 7 passes in events/s.
//
//   bench_validator [events=200000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "config/config.h"
#include "contract/validator.h"
#include "workload/generator.h"

using namespace sluice;

int main(int argc, char** argv)
{
    const long n = argc > 1 ? std::atol(argv[1]) : 200'000;
    auto cfg = config::loadForTools("");
    if (!cfg) {
        std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
        return 1;
    }
    auto set = contract::ContractSet::build(cfg->pipelineSpec);
    if (!set) {
        std::fprintf(stderr, "%s\n", set.status().message().c_str());
        return 1;
    }
    workload::Generator gen(workload::Options{});
    // One buffer with every line, padded after the last for the parser's read-ahead.
    std::string text;
    std::vector<std::pair<size_t, size_t>> lines;
    for (long i = 0; i < n; ++i) {
        const size_t start = text.size();
        gen.next(text);
        lines.emplace_back(start, text.size() - start);
        text += '\n';
    }
    text.append(64, ' ');
    contract::Validator validator(*set, contract::Limits{});
    Arena arena;
    std::vector<double> rates;
    long valid = 0;
    for (int pass = 0; pass < 7; ++pass) {
        valid = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (const auto& [offset, size] : lines) {
            contract::ParsedEvent ev;
            contract::Rejection why;
            if (validator.validate(std::string_view(text.data() + offset, size), 1, 2'000'000'000'000, arena, ev, why))
                ++valid;
            if (arena.bytes() > (64 << 20))
                arena.rewind();
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        rates.push_back(static_cast<double>(n) / s);
    }
    std::sort(rates.begin(), rates.end());
    std::printf("validator: %ld events (%ld valid), median of 7 passes %.0f events/s (min %.0f, max %.0f)\n", n, valid,
                rates[3], rates.front(), rates.back());
    return valid > 0 ? 0 : 1;
}
