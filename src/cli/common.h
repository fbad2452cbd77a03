// What every sluicectl subcommand shares: option parsing with --help, fatal errors as exit codes,
// the configuration, the database and the master key, subject hashing, time arguments and
// output files that may hold key material.
//
// Inside a command, a fatal problem throws Failure; cli::run() catches it, prints
// "sluicectl <command>: <message>" and returns its exit code. Messages never hold key bytes or
// event values.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/cli.h"
#include "config/config.h"
#include "core/commit.h"
#include "core/status.h"
#include "core/wipe.h"
#include "privacy/key_wrap.h"
#include "privacy/secret.h"
#include "store/db.h"

// The option parser's types, declared only: a command's .cpp includes
// <boost/program_options.hpp> itself when it builds options.
namespace boost::program_options {
class options_description;
class positional_options_description;
class variables_map;
}  // namespace boost::program_options

namespace sluice::cli {

namespace po = boost::program_options;

class Failure : public std::exception {
public:
    Failure(int exitCode, std::string message) : exitCode_(exitCode), message_(std::move(message)) {}
    int exitCode() const { return exitCode_; }
    const char* what() const noexcept override { return message_.c_str(); }

private:
    int exitCode_;
    std::string message_;
};

int exitCodeFor(StatusCode code);

// Throws Failure(exitCodeFor(code), "<context>: <message>") unless `status` is ok.
void check(const Status& status, std::string_view context = {});

template <typename T>
T take(Result<T>&& result, std::string_view context = {})
{
    if (!result)
        check(result.status(), context);
    return std::move(result).value();
}

struct Command {
    const char* name;      // "keys export"
    const char* synopsis;  // "[options] [VALUE...]"
    const char* summary;   // one line, also shown by `sluicectl help`
    const char* details;   // after the option list in --help: examples, output, exit codes
};

// An options group laid out for a 100-column help text.
po::options_description optionGroup(const char* caption = "Options");

// Parses a subcommand's arguments. `hidden` holds the options that positional arguments fill
// (not shown in the help). Prints the help text to io.out and returns false for --help; throws
// Failure(kExitUsage) for an unknown option, a missing value or a bad positional count.
bool parseCommandLine(const Command& command, const std::vector<std::string>& args,
                      po::options_description& options, po::variables_map& vm, Io& io,
                      const po::options_description* hidden = nullptr,
                      const po::positional_options_description* positional = nullptr);

// --config FILE, --state-dir DIR and sluiced's --section.key=value overrides (which
// parseCommandLine takes aside for a command with these options).
void addConfigOptions(po::options_description& options);

// Whether the command line said anything about the configuration.
bool hasConfigArguments(const po::variables_map& vm);

// The configuration sluiced would run with (config::loadForTools); Failure(kExitConfig) if
// invalid, Failure(kExitUsage) for an unknown setting.
config::Config loadToolConfig(const po::variables_map& vm);

// Opens the configuration's database, which must exist and be a sluice database. Read-only
// connections never create or modify anything; writable ones use WAL and secure_delete.
// Failure(kExitUnavailable) when there is no database file.
store::Db openDatabase(const config::Config& config, bool writable);

// Loads the master key (the credential or the configured file, never argv or the environment)
// and, when `db` is given, checks it against the database's check value, so that a wrong key is
// reported as such (Failure(kExitNoPerm)) before anything is decrypted.
privacy::KeyWrapper loadKeyWrapper(const config::Config& config, store::Db* db);

// The keyed hash of a data subject value, as the daemon stores it in key_subjects.
Digest subjectDigest(const privacy::KeyWrapper& wrapper, std::string_view value);

// --subject VALUE / --subject-file FILE (one value; a trailing newline is removed). nullopt when
// neither is given; Failure(kExitUsage) when both are.
void addSubjectOptions(po::options_description& options, const char* what);
std::optional<privacy::SecretBytes> readSubject(const po::variables_map& vm);

// "350 ms", "4.2 s", "3 min", "2.5 h", "3.1 d".
std::string humanDuration(int64_t ms);

// Values from the command line, or else one per line of io.in (a trailing "\r" removed).
void forEachValue(const std::vector<std::string>& values, Io& io, const std::function<void(std::string_view)>& fn);

// Where output goes: io.out, or a new file created with mode 0600 (an existing file is refused
// unless `replace`, and then truncated and set to 0600). A file that was not finish()ed is removed.
class OutputSink {
public:
    OutputSink(Io& io, const std::string& path, bool replace);
    ~OutputSink();
    OutputSink(const OutputSink&) = delete;
    OutputSink& operator=(const OutputSink&) = delete;

    void write(std::string_view bytes);  // Failure(kExitIoErr) on error
    void finish();                       // flush, fsync and close (or flush the stream)
    bool toFile() const { return fd_ >= 0 || !path_.empty(); }
    const std::string& path() const { return path_; }

private:
    Io& io_;
    std::string path_;
    int fd_ = -1;
    bool finished_ = false;
};

}  // namespace sluice::cli
