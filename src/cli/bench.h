// sluicectl bench: the reference workload against a running or self-started sluiced.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace sluice::cli {

// `args` are the arguments after "bench". Returns the exit code.
int runBench(const std::vector<std::string>& args, Io& io);
// `sluicectl bench --latency-table`: p50/p99 against max_delay at C/4 and C/2 (bench_latency.cpp).
int runBenchLatencyTable(const std::vector<std::string>& args, Io& io);
// `sluicectl bench --compare-pipeline`: the daemon against a single-thread in-process pipeline
// of the same work (bench_compare.cpp).
int runBenchComparePipeline(const std::vector<std::string>& args, Io& io);
// `sluicectl bench --job`: the batch-job benchmark (bench_job.cpp).
int runBenchJob(const std::vector<std::string>& args, Io& io);
// `sluicectl bench --reprocess`: sluicectl reprocess of a stored history (bench_reprocess.cpp).
int runBenchReprocess(const std::vector<std::string>& args);
// The [pipeline] lines of a daemon's configuration with the reference pipeline's aggregation in
// the window shape `shape`: tumbling (the built-in pipeline: 1m windows by country), sliding (5m
// windows every 1m by country) or session (a 30m gap by session_id); the same metrics, lateness
// and k, the same name (revenue_by_country). Files it needs are written under `dir`.
std::string benchPipelineConfig(const std::string& shape, const std::filesystem::path& dir);

}  // namespace sluice::cli
