// What the benchmarks that measure a child process share (sluicectl bench --job, --reprocess):
// running `sluicectl ...` as a child so that its CPU time and peak memory are its own (wait4),
// and medians.
#pragma once

#include <sys/resource.h>

#include <string>
#include <vector>

namespace sluice::cli {

// This executable's path (/proc/self/exe).
std::string selfExe();
// Runs `argv` as a child with its stdout into `out` (stderr stays the caller's) and its rusage
// into `usage`. Returns its exit code, 128 when it died of a signal, -1 when it could not start.
int runChild(const std::vector<std::string>& argv, std::string& out, rusage& usage);
// User plus system seconds of a child's rusage.
double cpuSeconds(const rusage& usage);
// The median (the mean of the middle two for an even count); 0 for none.
double median(std::vector<double> values);

}  // namespace sluice::cli
