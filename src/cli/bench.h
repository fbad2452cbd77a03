// sluicectl bench: the reference workload against a running or self-started sluiced.
#pragma once

#include <string>
#include <vector>

namespace sluice::cli {

// `args` are the arguments after "bench". Returns the exit code.
int runBench(const std::vector<std::string>& args);

}  // namespace sluice::cli
