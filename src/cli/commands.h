// The subcommands. Each takes the arguments after its name and returns an exit code; a fatal
// error may instead throw Failure (common.h), which cli::run() turns into a message and a code.
#pragma once

#include <string>
#include <vector>

#include "cli/cli.h"

namespace sluice::cli {

int runSend(const std::vector<std::string>& args, Io& io);
int runCurveKeygen(const std::vector<std::string>& args, Io& io);
int runKeysExport(const std::vector<std::string>& args, Io& io);
int runDecrypt(const std::vector<std::string>& args, Io& io);
int runMask(const std::vector<std::string>& args, Io& io);
int runForget(const std::vector<std::string>& args, Io& io);
int runTap(const std::vector<std::string>& args, Io& io);
int runStatus(const std::vector<std::string>& args, Io& io);
int runCheckConfig(const std::vector<std::string>& args, Io& io);
int runJobRun(const std::vector<std::string>& args, Io& io);
int runJobCheck(const std::vector<std::string>& args, Io& io);
int runReprocess(const std::vector<std::string>& args, Io& io);

}  // namespace sluice::cli
