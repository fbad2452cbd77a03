// The exit codes of both programs: 0 and the sysexits(3) values. One definition, so that the
// daemon, sluicectl, the unit file (RestartPreventExitStatus=) and the docs agree.
// docs/cli.md lists which command returns which; docs/operations.md what sluiced returns.
#pragma once

namespace sluice {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 64;        // bad command line
inline constexpr int kExitDataErr = 65;      // bad input data; values that did not decrypt
inline constexpr int kExitUnavailable = 69;  // the database, a socket or the daemon is not there
inline constexpr int kExitSoftware = 70;     // an internal error (a bug, or a fault with no better code)
inline constexpr int kExitIoErr = 74;        // reading or writing a file or the database failed
inline constexpr int kExitTempFail = 75;     // something was not finished; retrying may help
inline constexpr int kExitNoPerm = 77;       // the master key is missing or does not match
inline constexpr int kExitConfig = 78;       // the configuration is invalid

}  // namespace sluice
