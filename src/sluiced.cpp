// sluiced: the daemon. Everything it does is in service/daemon.cpp; this is argument handling.
#include <iostream>

#include "config/config.h"
#include "service/daemon.h"

int main(int argc, char** argv)
{
    using namespace sluice;
    config::LoadError error;
    auto cfg = config::load(argc, argv, &error);
    if (!cfg) {
        std::cerr << "sluiced: " << cfg.status().message() << "\n";
        if (error.usage)
            std::cerr << "Try 'sluiced --help'.\n";
        return error.usage ? 64 : 78;  // EX_USAGE, EX_CONFIG
    }
    if (cfg->showHelp) {
        std::cout << cfg->helpText;
        return 0;
    }
    if (cfg->showVersion) {
        std::cout << "sluiced " << SLUICE_VERSION << "\n";
        return 0;
    }
    if (cfg->checkOnly) {
        const auto& p = *cfg->pipelineSpec;
        std::cout << "configuration OK (" << (cfg->configFile.empty() ? "embedded" : cfg->configFile) << "): "
                  << p.contracts.size() << " contract(s), " << p.outputs.size() << " derived output(s), "
                  << p.aggregations.size() << " aggregation(s)\n";
        return 0;
    }
    return service::runDaemon(*cfg);
}
