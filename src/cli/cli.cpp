#include "cli/cli.h"

#include <algorithm>
#include <iostream>
#include <new>

#include "cli/bench.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace sluice::cli {
namespace {

struct Entry {
    const char* name;
    const char* summary;
    int (*run)(const std::vector<std::string>&, Io&);
};

int runBenchEntry(const std::vector<std::string>& args, Io& io)
{
    if (std::find(args.begin(), args.end(), "--latency-table") != args.end())
        return runBenchLatencyTable(args, io);
    if (std::find(args.begin(), args.end(), "--compare-pipeline") != args.end())
        return runBenchComparePipeline(args, io);
    return runBench(args, io);
}

const Entry kCommands[] = {
    {"send", "send JSONL events to sluiced (acknowledged by default) and report what happened", runSend},
    {"curve-keygen", "create a CURVE key pair (secret into a file, public printed) for the daemon or a producer", runCurveKeygen},
    {"keys export", "export data keys as Tink keysets (JSON lines) or the keyLink CSV", runKeysExport},
    {"decrypt", "decrypt values with an exported keyset, or a contract's events with the database", runDecrypt},
    {"reprocess", "recompute an aggregation from the committed events, replacing its final windows", runReprocess},
    {"mask", "compute the mask of values (hmac-sha256 or murmur3), e.g. to look a record up", runMask},
    {"forget", "crypto-shred a data subject or key link: delete keys and derived rows", runForget},
    {"tap", "print committed records live from a stream exporter (ZeroMQ SUB)", runTap},
    {"status", "summarise the running daemon's metrics (or the database when it is down)", runStatus},
    {"check-config", "validate the configuration, contracts and pipelines like sluiced --check-config", runCheckConfig},
    {"job run", "run a batch job: CSV or JSON-lines files through the privacy transform (docs/jobs.md)", runJobRun},
    {"job check", "check a job file and the first rows of its inputs; writes nothing", runJobCheck},
    {"bench", "run the reference-workload benchmark", runBenchEntry},
};

void printUsage(std::ostream& out)
{
    out << "usage: sluicectl <command> [options]\n\n"
           "sluice's admin tool. Commands:\n";
    for (const Entry& e : kCommands) {
        std::string name = e.name;
        name.resize(14, ' ');
        out << "  " << name << e.summary << "\n";
    }
    out << "\n'sluicectl <command> --help' (or 'sluicectl help <command>') shows a command's options.\n"
           "Commands that read the database take --config FILE (default: the embedded configuration,\n"
           "state in ./sluice-data), --state-dir DIR and sluiced's --section.key=value overrides.\n"
           "Exit codes: 0 ok, 64 usage, 65 bad data,\n"
           "69 unavailable, 70 internal, 74 I/O, 75 incomplete, 77 master key, 78 configuration.\n";
}

// Finds the command named by args[0] (or args[0..1] for "keys export"); `used` is how many
// arguments its name took.
const Entry* findCommand(const std::vector<std::string>& args, size_t& used)
{
    for (const Entry& e : kCommands) {
        const std::string name = e.name;
        const size_t space = name.find(' ');
        if (space == std::string::npos) {
            if (args[0] == name) {
                used = 1;
                return &e;
            }
        } else if (args[0] == name.substr(0, space) && args.size() > 1 && args[1] == name.substr(space + 1)) {
            used = 2;
            return &e;
        }
    }
    return nullptr;
}

int dispatch(const std::vector<std::string>& args, Io& io)
{
    if (args.empty()) {
        printUsage(io.err);
        return kExitUsage;
    }
    if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
        if (args.size() == 1) {
            printUsage(io.out);
            return kExitOk;
        }
        std::vector<std::string> rest(args.begin() + 1, args.end());
        if (rest.size() == 1 && rest[0] == "keys")
            rest.push_back("export");
        if (rest.size() == 1 && rest[0] == "job")
            rest.push_back("run");
        rest.push_back("--help");
        return dispatch(rest, io);
    }
    if (args[0] == "--version" || args[0] == "version") {
        io.out << "sluicectl " << SLUICE_VERSION << "\n";
        return kExitOk;
    }
    size_t used = 0;
    const Entry* entry = findCommand(args, used);
    if (!entry) {
        if (args[0] == "keys")
            io.err << "sluicectl keys: expected 'keys export'\n";
        else if (args[0] == "job")
            io.err << "sluicectl job: expected 'job run' or 'job check'\n";
        else
            io.err << "sluicectl: unknown command '" << args[0] << "'\n";
        io.err << "Try 'sluicectl help'.\n";
        return kExitUsage;
    }
    const std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(used), args.end());
    try {
        return entry->run(rest, io);
    } catch (const Failure& f) {
        io.out.flush();
        io.err << "sluicectl " << entry->name << ": " << f.what() << "\n";
        return f.exitCode();
    }
}

}  // namespace

int run(const std::vector<std::string>& args, Io io)
{
    try {
        return dispatch(args, io);
    } catch (const std::bad_alloc&) {
        io.err << "sluicectl: out of memory\n";
    } catch (const std::exception& e) {
        io.err << "sluicectl: internal error: " << e.what() << "\n";
    } catch (...) {
        io.err << "sluicectl: internal error\n";
    }
    return kExitSoftware;
}

}  // namespace sluice::cli
