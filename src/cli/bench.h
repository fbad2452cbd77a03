// sluicectl bench: the reference workload against a running or self-started sluiced.
#pragma once

#include <string>
#include <vector>

#include "cli/cli.h"

namespace sluice::cli {

// `args` are the arguments after "bench". Returns the exit code.
int runBench(const std::vector<std::string>& args);
// `sluicectl bench --latency-table`: p50/p99 against max_delay at C/4 and C/2 (bench_latency.cpp).
int runBenchLatencyTable(const std::vector<std::string>& args, Io& io);
// `sluicectl bench --job`: the batch-job benchmark (bench_job.cpp).
int runBenchJob(const std::vector<std::string>& args);

}  // namespace sluice::cli
