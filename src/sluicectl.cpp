// sluicectl: the admin tool. Every subcommand lives in cli/; this is the process boundary.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "core/exit_codes.h"
#include "core/log.h"

int main(int argc, char** argv)
{
    try {
        sluice::log::setPrefixes(false);  // an interactive tool, not a journald stream
        std::vector<std::string> args(argv + 1, argv + argc);
        return sluice::cli::run(args, {std::cin, std::cout, std::cerr});
    } catch (const std::exception& e) {
        std::cerr << "sluicectl: internal error: " << e.what() << "\n";
        return sluice::kExitSoftware;
    } catch (...) {
        std::cerr << "sluicectl: internal error: unknown exception\n";
        return sluice::kExitSoftware;
    }
}
