// sluicectl check-config: exactly what `sluiced --check-config` checks and prints.
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"

namespace sluice::cli {

int runCheckConfig(const std::vector<std::string>& args, Io& io)
{
    for (const std::string& a : args) {
        if (a == "--help" || a == "-h") {
            io.out << "usage: sluicectl check-config [--config FILE] [--state-dir DIR] [--section.key=value ...]\n\n"
                      "Loads the configuration (the embedded one without --config), its contracts and pipelines,\n"
                      "and checks them as `sluiced --check-config` does; the same overrides are accepted.\n"
                      "Exit codes: 0 valid, 64 bad command line, 78 invalid configuration.\n";
            return kExitOk;
        }
        if (a == "--demo" || a == "--version" || a == "--check-config")
            throw Failure(kExitUsage, "'" + a + "' is a sluiced option, not one of check-config");
    }
    std::vector<std::string> argv = {"sluiced", "--check-config"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> pointers;
    for (const std::string& a : argv)
        pointers.push_back(a.c_str());
    config::LoadError error;
    auto cfg = config::load(static_cast<int>(pointers.size()), pointers.data(), &error);
    if (!cfg)
        throw Failure(error.usage ? kExitUsage : kExitConfig, cfg.status().message());
    const PipelineSpec& p = *cfg->pipelineSpec;
    io.out << "configuration OK (" << (cfg->configFile.empty() ? "embedded" : cfg->configFile)
           << "): " << p.contracts.size() << " contract(s), " << p.outputs.size() << " derived output(s), "
           << p.aggregations.size() << " aggregation(s)\n";
    return kExitOk;
}

}  // namespace sluice::cli
