#include "cli/common.h"

#include <boost/program_options.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "privacy/hmac.h"
#include "privacy/master_key.h"
#include "store/schema.h"
#include "store/state.h"

namespace sluice::cli {
namespace {

// Where parseCommandLine keeps a command's "--section.key=value" arguments for loadToolConfig.
constexpr const char* kOverridesKey = "--section.key overrides";

// "--section.key=value" or "--section.key" (its value the next argument): a sluiced setting.
bool isSettingOverride(std::string_view arg)
{
    if (arg.size() < 3 || arg.substr(0, 2) != "--")
        return false;
    const std::string_view name = arg.substr(2, arg.find('=') == std::string_view::npos ? arg.npos : arg.find('=') - 2);
    return name.find('.') != std::string_view::npos;
}

}  // namespace

int exitCodeFor(StatusCode code)
{
    switch (code) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kCorruption: return kExitDataErr;
    case StatusCode::kAlreadyExists:
    case StatusCode::kIoError: return kExitIoErr;
    case StatusCode::kPermission: return kExitNoPerm;
    case StatusCode::kUnavailable: return kExitUnavailable;
    case StatusCode::kInternal: return kExitSoftware;
    }
    return kExitSoftware;
}

void check(const Status& status, std::string_view context)
{
    if (status)
        return;
    std::string message = context.empty() ? status.message() : std::string(context) + ": " + status.message();
    throw Failure(exitCodeFor(status.code()), std::move(message));
}

po::options_description optionGroup(const char* caption)
{
    return po::options_description(caption, 100, 50);
}

bool parseCommandLine(const Command& command, const std::vector<std::string>& args,
                      po::options_description& options, po::variables_map& vm, Io& io,
                      const po::options_description* hidden, const po::positional_options_description* positional)
{
    options.add_options()("help,h", "print this help");
    po::options_description all;
    all.add(options);
    if (hidden)
        all.add(*hidden);
    // A command that reads the configuration takes sluiced's setting overrides, as sluiced does;
    // config::load checks their names and values.
    std::vector<std::string> rest;
    std::vector<std::string> overrides;
    const bool readsConfig = options.find_nothrow("config", false) != nullptr;
    for (size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--") {
            rest.insert(rest.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
            break;
        }
        if (!readsConfig || !isSettingOverride(args[i])) {
            rest.push_back(args[i]);
        } else if (args[i].find('=') != std::string::npos) {
            overrides.push_back(args[i]);
        } else if (i + 1 < args.size()) {
            overrides.push_back(args[i] + "=" + args[i + 1]);
            ++i;
        } else {
            throw Failure(kExitUsage, "'" + args[i] + "' needs a value (see 'sluicectl " + command.name + " --help')");
        }
    }
    const po::positional_options_description none;
    try {
        po::store(po::command_line_parser(rest).options(all).positional(positional ? *positional : none).run(), vm);
        if (vm.count("help")) {
            io.out << "usage: sluicectl " << command.name << " " << command.synopsis << "\n\n"
                   << command.summary << "\n\n"
                   << options << "\n";
            if (command.details && *command.details)
                io.out << command.details;
            return false;
        }
        po::notify(vm);
    } catch (const po::error& e) {
        throw Failure(kExitUsage, std::string(e.what()) + " (see 'sluicectl " + command.name + " --help')");
    }
    if (!overrides.empty())
        vm.emplace(kOverridesKey, po::variable_value(overrides, false));
    return true;
}

void addConfigOptions(po::options_description& options)
{
    options.add_options()
        ("config,c", po::value<std::string>()->value_name("FILE"),
         "sluiced's configuration file (default: the embedded configuration, state in ./sluice-data)")
        ("state-dir", po::value<std::string>()->value_name("DIR"), "override service.state_dir")
        ("SECTION.KEY", po::value<std::string>()->value_name("VALUE"),
         "any sluiced setting, as sluiced's command line takes it (repeatable), e.g. "
         "--privacy.master_key_file=/etc/sluice/master.key");
}

bool hasConfigArguments(const po::variables_map& vm)
{
    return vm.count("config") || vm.count("state-dir") || vm.count(kOverridesKey);
}

config::Config loadToolConfig(const po::variables_map& vm)
{
    const std::string file = vm.count("config") ? vm["config"].as<std::string>() : std::string();
    const std::string state = vm.count("state-dir") ? vm["state-dir"].as<std::string>() : std::string();
    const std::vector<std::string> overrides =
        vm.count(kOverridesKey) ? vm[kOverridesKey].as<std::vector<std::string>>() : std::vector<std::string>{};
    config::LoadError error;
    auto cfg = config::loadForTools(file, state, overrides, &error);
    if (!cfg)
        throw Failure(error.usage ? kExitUsage : kExitConfig, cfg.status().message());
    return std::move(cfg).value();
}

store::Db openDatabase(const config::Config& config, bool writable)
{
    const std::string& path = config.store.database;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw Failure(kExitUnavailable, "no database at " + path +
                                            " (has sluiced run with this configuration? see --config and --state-dir)");
    store::Db::Options options;
    options.readOnly = !writable;
    options.create = false;
    options.busyTimeoutMs = 30'000;
    auto db = store::Db::open(path, options);
    if (!db)
        throw Failure(kExitIoErr, db.status().message());
    auto version = store::schemaVersion(*db);
    if (!version)
        check(version.status(), path);
    if (*version == 0)
        throw Failure(kExitDataErr, path + " is not a sluice database (it has no sluice schema)");
    if (*version > store::kSchemaVersion)
        throw Failure(kExitDataErr, path + " was written by a newer sluice (schema " + std::to_string(*version) +
                                        "); use a sluicectl of that version");
    return std::move(db).value();
}

privacy::KeyWrapper loadKeyWrapper(const config::Config& config, store::Db* db)
{
    auto master = privacy::loadMasterKey(
        {config.privacy.masterKeyFile, config.privacy.masterKeyCredential, config.configFile}, false);
    if (!master)
        throw Failure(kExitNoPerm, master.status().message());
    const std::string source = master->source;
    auto wrapper = privacy::KeyWrapper::create(std::move(master->bytes));
    if (!wrapper)
        throw Failure(kExitNoPerm, source + ": " + wrapper.status().message());
    if (db) {
        const store::MasterKeyCheck stored = take(store::readMasterKeyCheck(*db), config.store.database);
        Status s = privacy::verifyMasterKey(*wrapper, stored.value, stored.holdsKeys);
        if (s.code() == StatusCode::kPermission)
            throw Failure(kExitNoPerm, "the master key from " + source + " does not match the database " +
                                           config.store.database +
                                           " (it was made with another master key); nothing can be unwrapped");
        if (s.code() == StatusCode::kCorruption)
            throw Failure(kExitDataErr, config.store.database + ": " + s.message());
        check(s, config.store.database);
    }
    return std::move(wrapper).value();
}

Digest subjectDigest(const privacy::KeyWrapper& wrapper, std::string_view value)
{
    auto key = take(wrapper.deriveKey(privacy::kLabelSubjectLookup), "deriving the subject lookup key");
    auto mac = take(privacy::HmacSha256::create(key.view()), "subject lookup");
    return take(mac.mac(value), "subject lookup");
}

void addSubjectOptions(po::options_description& options, const char* what)
{
    const std::string valueHelp = std::string("the data subject (") + what + "): its data_subject_field value";
    options.add_options()
        ("subject", po::value<std::string>()->value_name("VALUE"), valueHelp.c_str())
        ("subject-file", po::value<std::string>()->value_name("FILE"),
         "the same, read from FILE (keeps the value off the command line)");
}

std::optional<privacy::SecretBytes> readSubject(const po::variables_map& vm)
{
    if (vm.count("subject") && vm.count("subject-file"))
        throw Failure(kExitUsage, "give --subject or --subject-file, not both");
    if (vm.count("subject")) {
        const std::string& v = vm["subject"].as<std::string>();
        if (v.empty())
            throw Failure(kExitUsage, "--subject is empty");
        return privacy::SecretBytes::copyOf(v);
    }
    if (vm.count("subject-file")) {
        auto bytes = privacy::readSecretFile(vm["subject-file"].as<std::string>(), 0);
        if (!bytes)
            throw Failure(bytes.status().code() == StatusCode::kInvalidArgument ? kExitDataErr : kExitIoErr,
                          bytes.status().message());
        return std::move(bytes).value();
    }
    return std::nullopt;
}

std::string humanDuration(int64_t ms)
{
    std::ostringstream s;
    s << std::fixed << std::setprecision(1);
    const double v = static_cast<double>(ms);
    if (ms < 0)
        return "in the future";
    if (ms < 1000)
        s << ms << " ms";
    else if (ms < 120'000)
        s << v / 1000 << " s";
    else if (ms < 2 * 3'600'000)
        s << v / 60'000 << " min";
    else if (ms < 2 * 86'400'000)
        s << v / 3'600'000 << " h";
    else
        s << v / 86'400'000 << " d";
    return s.str();
}

void forEachValue(const std::vector<std::string>& values, Io& io, const std::function<void(std::string_view)>& fn)
{
    if (!values.empty()) {
        for (const std::string& v : values)
            fn(v);
        return;
    }
    std::string line;
    while (std::getline(io.in, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        fn(line);
    }
    wipe(line);
}

OutputSink::OutputSink(Io& io, const std::string& path, bool replace) : io_(io), path_(path)
{
    if (path_.empty() || path_ == "-") {
        path_.clear();
        return;
    }
    const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (replace ? O_TRUNC : O_EXCL);
    fd_ = ::open(path_.c_str(), flags, 0600);
    if (fd_ < 0) {
        const int e = errno;
        if (e == EEXIST)
            throw Failure(kExitIoErr, path_ + " already exists; choose another file or pass --force to replace it");
        throw Failure(kExitIoErr, "cannot create " + path_ + ": " + std::strerror(e));
    }
    // A replaced file keeps its old mode otherwise; key material must not be group-readable.
    if (replace && ::fchmod(fd_, 0600) != 0) {
        const int e = errno;
        ::close(fd_);
        fd_ = -1;
        throw Failure(kExitIoErr, "cannot set mode 0600 on " + path_ + ": " + std::strerror(e));
    }
}

OutputSink::~OutputSink()
{
    if (fd_ >= 0) {
        ::close(fd_);
        if (!finished_)
            ::unlink(path_.c_str());
    }
}

void OutputSink::write(std::string_view bytes)
{
    if (fd_ < 0) {
        io_.out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!io_.out)
            throw Failure(kExitIoErr, "writing to standard output failed");
        return;
    }
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw Failure(kExitIoErr, "writing " + path_ + " failed: " + std::strerror(errno));
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
}

void OutputSink::finish()
{
    if (fd_ < 0) {
        io_.out.flush();
        if (!io_.out)
            throw Failure(kExitIoErr, "writing to standard output failed");
        finished_ = true;
        return;
    }
    if (::fsync(fd_) != 0)
        throw Failure(kExitIoErr, "fsync of " + path_ + " failed: " + std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
        ::unlink(path_.c_str());
        throw Failure(kExitIoErr, "closing " + path_ + " failed: " + std::strerror(errno));
    }
    finished_ = true;
}

}  // namespace sluice::cli
