// sluicectl: the admin tool's entry point. src/sluicectl.cpp only forwards its arguments here,
// so that tests run every subcommand in-process with their own streams.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace sluice::cli {

// Exit codes (sysexits.h values, plus 0). docs/cli.md lists which command returns which.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 64;        // bad command line
inline constexpr int kExitDataErr = 65;      // bad input data; values that did not decrypt
inline constexpr int kExitUnavailable = 69;  // the database or the daemon is not there
inline constexpr int kExitSoftware = 70;     // an internal error
inline constexpr int kExitIoErr = 74;        // reading or writing a file or the database failed
inline constexpr int kExitTempFail = 75;     // something was not finished; retrying may help
inline constexpr int kExitNoPerm = 77;       // the master key is missing or does not match
inline constexpr int kExitConfig = 78;       // the configuration is invalid

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
