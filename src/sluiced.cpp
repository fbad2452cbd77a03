// sluiced: the daemon. Everything it does is in service/daemon.cpp; this is argument handling
// and the one place that turns what went wrong into an exit code.
#include <exception>
#include <iostream>

#include "config/config.h"
#include "core/exit_codes.h"
#include "core/log.h"
#include "service/daemon.h"

namespace {

int run(int argc, char** argv)
{
    using namespace sluice;
    config::LoadError error;
    auto cfg = config::load(argc, argv, &error);
    if (!cfg) {
        // With the "<3>" prefix: under systemd this is the journal's err line for a broken
        // configuration (the unit has no ExecStartPre; this check is the one that fails).
        log::error(cfg.status().message());
        if (error.usage)
            std::cerr << "Try 'sluiced --help'.\n";
        return error.usage ? kExitUsage : kExitConfig;
    }
    if (cfg->showHelp) {
        std::cout << cfg->helpText;
        return kExitOk;
    }
    if (cfg->showVersion) {
        std::cout << "sluiced " << SLUICE_VERSION << "\n";
        return kExitOk;
    }
    if (cfg->checkOnly) {
        const auto& p = *cfg->pipelineSpec;
        std::cout << "configuration OK (" << (cfg->configFile.empty() ? "embedded" : cfg->configFile) << "): "
                  << p.contracts.size() << " contract(s), " << p.outputs.size() << " derived output(s), "
                  << p.aggregations.size() << " aggregation(s)\n";
        return kExitOk;
    }
    return service::runDaemon(*cfg);
}

}  // namespace

int main(int argc, char** argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        // Startup may throw (allocation, a library's exception); the pipeline threads never let
        // one escape (they report a Status to runDaemon).
        sluice::log::error("sluiced: internal error: ", e.what());
        return sluice::kExitSoftware;
    } catch (...) {
        sluice::log::error("sluiced: internal error: unknown exception");
        return sluice::kExitSoftware;
    }
}
