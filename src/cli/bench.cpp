#include "cli/bench.h"

#include <iostream>

namespace sluice::cli {

int runBench(const std::vector<std::string>&)
{
    std::cerr << "sluicectl bench: not built yet\n";
    return 70;
}

}  // namespace sluice::cli
