// What PCRE2's JIT is worth on the reference contract's patterns. Under systemd the unit sets
// MemoryDenyWriteExecute=yes, which makes JIT compilation fail, so sluiced matches with the
// interpreter there; this prints the cost of that choice per match.
//
//   bench_pattern [matches=2000000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "contract/pattern.h"

using namespace sluice::contract;

int main(int argc, char** argv)
{
    const long n = argc > 1 ? std::atol(argv[1]) : 2'000'000;
    struct Case {
        const char* pattern;
        const char* subject;
    };
    const Case cases[] = {
        {"^[^@]+@[^@]+$", "customer.01234@mail.example.com"},  // email in acme/checkout/1.0.0
        {"^[A-Z]{2}$", "NL"},                                   // country
    };
    PatternMatcher matcher;
    for (const Case& c : cases) {
        for (bool jit : {true, false}) {
            auto pattern = Pattern::compile(c.pattern, jit);
            if (!pattern) {
                std::fprintf(stderr, "%s\n", pattern.status().message().c_str());
                return 1;
            }
            std::vector<double> runs;
            for (int run = 0; run < 5; ++run) {
                long matched = 0;
                const auto start = std::chrono::steady_clock::now();
                for (long i = 0; i < n; ++i)
                    matched += matcher.match(**pattern, c.subject) == MatchResult::kMatch;
                const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
                if (matched != n) {
                    std::fprintf(stderr, "%s did not match %s\n", c.pattern, c.subject);
                    return 1;
                }
                runs.push_back(took.count() / static_cast<double>(n));
            }
            std::sort(runs.begin(), runs.end());
            std::printf("%-16s %-12s %6.1f ns/match (median of 5 x %ld)\n", c.pattern,
                        (*pattern)->jit() ? "jit" : "interpreter", runs[2], n);
        }
    }
    return 0;
}
