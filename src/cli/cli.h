// sluicectl: the admin tool's entry point. src/sluicectl.cpp only forwards its arguments here,
// so that tests run every subcommand in-process with their own streams.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "core/exit_codes.h"

namespace sluice::cli {

// The streams a command reads and writes: std::cin/cout/cerr for the real tool.
struct Io {
    std::istream& in;
    std::ostream& out;
    std::ostream& err;
};

// Runs `sluicectl <args...>` (args exclude the program name) and returns its exit code. Never
// throws. Commands that print key material print it only to `io.out` or to the file they were
// told to write; nothing secret goes to `io.err`.
int run(const std::vector<std::string>& args, Io io);

}  // namespace sluice::cli
