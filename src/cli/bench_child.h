// What the benchmarks share (sluicectl bench and its --job, --reprocess, --latency-table and
// --compare-pipeline): running `sluicectl ...` as a child so that its CPU time and peak memory
// are its own (wait4), or so that each measurement starts afresh; and medians.
#pragma once

#include <sys/resource.h>

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::cli {

// This executable's path (/proc/self/exe).
std::string selfExe();
// Runs `argv` as a child with its stdout into `out` (stderr stays the caller's) and its rusage
// into `usage`. Returns its exit code, 128 when it died of a signal, -1 when it could not start.
int runChild(const std::vector<std::string>& argv, std::string& out, rusage& usage);
// Runs `sluicectl bench ARGS` in a child process and parses the JSON line it prints (`--json`
// among ARGS); null on failure (the child's stderr says why).
nlohmann::json benchChild(const std::vector<std::string>& args);
// User plus system seconds of a child's rusage.
double cpuSeconds(const rusage& usage);
// printf into a stream: the benchmarks' text tables keep their column formats.
[[gnu::format(printf, 2, 3)]] void print(std::ostream& out, const char* format, ...);
// The median (the mean of the middle two for an even count); 0 for none.
double median(std::vector<double> values);

}  // namespace sluice::cli
