// sluicectl job run|check: batch jobs over CSV and JSON-lines files (docs/jobs.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/time_format.h"
#include "job/job_file.h"
#include "job/job_runner.h"
#include "job/job_sender.h"
#include "privacy/secret.h"

namespace sluice::cli {
namespace {

using Json = nlohmann::ordered_json;

const Command kJobRun = {
    "job run",
    "JOB.json [options]",
    "Runs a batch job: its CSV or JSON-lines inputs through the privacy transform into encrypted\n"
    "data, derived outputs, aggregations, keys, rejects and/or a SQLite database (docs/jobs.md).",
    R"(Outputs are written under temporary names and published together at the end. A job that was
interrupted (killed, a full disk) continues from its last checkpoint when run again with the
same job file over the same inputs, and says so; its outputs are exactly those of one clean run.
An output that exists is refused unless --force. Keys live in the job group's key store: the same
input run again in the same group encrypts to the same bytes.

With --send ENDPOINT the rows go to a running sluiced over the acknowledged protocol instead
(producer id "job/<id>", one request per chunk of rows: exactly once across retries and runs);
only the rejects output is written.

On a terminal a progress bar shows rows, rows/s, bytes, ETA and rejects; otherwise one line per
input. --json prints the summary as one JSON object.

Exit codes: 0 done; 65 the rejects exceeded max_reject_share (only the rejects output was
written), or an input is unreadable as its format; 69 another run of this job or its group is
running, or the daemon did not answer (--send); 74 a file could not be read or written; 75 some
rows were not acknowledged (--send: run again, it is safe); 77 the master key does not match the
key store; 78 the job file is invalid or an output exists without --force.

Examples:
  sluicectl job run invoices.json
  sluicectl job run invoices.json --force --json
  sluicectl job run invoices.json --send tcp://127.0.0.1:7401
)",
};

const Command kJobCheck = {
    "job check",
    "JOB.json [options]",
    "Checks a job file and the first rows of each input against the contract; writes nothing.",
    R"(Reads the job file, the header of every input and its first --rows rows (1000), and reports
how many would be rejected and why (the first few of each input), and which outputs exist.

Exit codes: 0 the job would run; 65 some checked row would be rejected; 78 the job file is
invalid, or an output exists (a run would need --force).
)",
};

int exitFor(const Status& s)
{
    switch (s.code()) {
    case StatusCode::kInvalidArgument: return kExitConfig;
    case StatusCode::kAlreadyExists: return kExitConfig;
    case StatusCode::kNotFound: return kExitConfig;
    case StatusCode::kCorruption: return kExitDataErr;
    case StatusCode::kPermission: return kExitNoPerm;
    case StatusCode::kUnavailable: return kExitUnavailable;
    case StatusCode::kIoError: return kExitIoErr;
    default: return kExitSoftware;
    }
}

job::JobSpec loadJob(const po::variables_map& vm)
{
    if (!vm.count("job"))
        throw Failure(kExitUsage, "give the job file: sluicectl job run JOB.json");
    auto job = job::loadJobFile(vm["job"].as<std::string>());
    if (!job)
        throw Failure(kExitConfig, job.status().message());
    return std::move(*job);
}

privacy::KeyWrapper keyWrapperFor(const job::JobSpec& job, const po::variables_map& vm)
{
    if (job.masterKeyFile.empty())
        return loadKeyWrapper(loadToolConfig(vm), nullptr);
    auto bytes = privacy::readSecretFile(job.masterKeyFile, privacy::kMasterKeySize);
    if (!bytes)
        throw Failure(kExitNoPerm, job.path + ": master_key_file: " + bytes.status().message());
    auto wrapper = privacy::KeyWrapper::create(std::move(*bytes));
    if (!wrapper)
        throw Failure(kExitNoPerm, job.masterKeyFile + ": " + wrapper.status().message());
    return std::move(*wrapper);
}

std::string bytesText(uint64_t bytes)
{
    char buf[32];
    if (bytes >= (1ull << 30))
        std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1ull << 30));
    else if (bytes >= (1ull << 20))
        std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
    else if (bytes >= 1024)
        std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
    else
        std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
    return buf;
}

// Progress on a terminal: one line, redrawn at most 10 times a second.
class ProgressBar {
public:
    explicit ProgressBar(std::ostream& out) : out_(out) {}
    void update(const job::Progress& p)
    {
        const auto now = std::chrono::steady_clock::now();
        if (drawn_ && now - last_ < std::chrono::milliseconds(100))
            return;
        last_ = now;
        drawn_ = true;
        const double share = p.bytesTotal ? static_cast<double>(p.bytesRead) / static_cast<double>(p.bytesTotal) : 0;
        const int width = 24;
        const int filled = static_cast<int>(share * width);
        std::string bar(static_cast<size_t>(filled), '#');
        bar.resize(width, '.');
        const double rate = p.seconds > 0 ? static_cast<double>(p.rowsThisRun) / p.seconds : 0;
        const double eta = share > 0.001 && share < 1 ? p.seconds * (1 - share) / share : 0;
        char line[256];
        std::snprintf(line, sizeof line, "\r[%s] %3.0f%%  %llu rows  %.0f rows/s  %s/%s  ETA %s  rejects %llu  (input %zu/%zu)  ",
                      bar.c_str(), share * 100, static_cast<unsigned long long>(p.rows), rate,
                      bytesText(p.bytesRead).c_str(), bytesText(p.bytesTotal).c_str(),
                      eta > 0 ? humanDuration(static_cast<int64_t>(eta * 1000)).c_str() : "-",
                      static_cast<unsigned long long>(p.rejected), p.file + 1, p.files);
        out_ << line << std::flush;
    }
    void done()
    {
        if (drawn_)
            out_ << "\n";
    }

private:
    std::ostream& out_;
    std::chrono::steady_clock::time_point last_;
    bool drawn_ = false;
};

Json summaryJson(const job::JobSpec& job, const job::JobSummary& s, bool ok)
{
    Json j;
    j["job"] = job.id;
    j["group"] = job.group;
    j["ok"] = ok;
    j["rows"] = s.rows;
    j["accepted"] = s.accepted;
    j["rejected"] = s.rejected;
    j["rejected_by_reason"] = s.rejectedByReason;
    j["keys_created"] = s.keysCreated;
    j["keys_used"] = s.keysUsed;
    j["key_days_read"] = s.keyDaysRead;
    j["key_days_dropped"] = s.keyDaysDropped;
    j["resumed"] = s.resumed;
    j["resumed_rows"] = s.resumedRows;
    j["seconds"] = s.seconds;
    j["rows_per_second"] = s.seconds > 0 ? static_cast<double>(s.rows - s.resumedRows) / s.seconds : 0.0;
    Json inputs = Json::array();
    for (const job::InputSummary& i : s.inputs)
        inputs.push_back({{"file", i.path}, {"bytes", i.bytes}, {"rows", i.rows}, {"accepted", i.accepted},
                          {"rejected", i.rejected}});
    j["inputs"] = inputs;
    j["profile_seconds"] = {{"read", s.profile.read},           {"parse", s.profile.parse},
                            {"transform", s.profile.transform}, {"aggregate", s.profile.aggregate},
                            {"store_keys", s.profile.storeKeys}, {"write", s.profile.write},
                            {"publish", s.profile.publish},
                            {"start", s.profile.start},         {"wait_read", s.profile.waitRead},
                            {"wait_write", s.profile.waitWrite}, {"writer_idle", s.profile.writerIdle},
                            {"phases", s.profile.phases},       {"lane_wait", s.profile.laneWait},
                            {"serial", s.profile.serial}};
    j["cpu_seconds"] = {{"read", s.profile.readCpu},
                        {"transform", s.profile.transformCpu},
                        {"store_keys", s.profile.storeKeysCpu},
                        {"write", s.profile.writeCpu}};
    j["outputs"] = s.published;
    return j;
}

void printSummary(Io& io, const job::JobSpec& job, const job::JobSummary& s)
{
    const double rate = s.seconds > 0 ? static_cast<double>(s.rows - s.resumedRows) / s.seconds : 0;
    char line[160];
    std::snprintf(line, sizeof line, "%.2f s, %.0f rows/s", s.seconds, rate);
    io.err << "job " << job.id << ": " << s.rows << " row(s), " << s.accepted << " accepted, " << s.rejected
           << " rejected; " << s.keysUsed << " key(s) used (" << s.keysCreated << " new in group " << job.group
           << "); " << line << "\n";
    if (!s.rejectedByReason.empty()) {
        io.err << "rejected by reason:";
        bool first = true;
        for (const auto& [code, n] : s.rejectedByReason) {
            io.err << (first ? " " : ", ") << code << " " << n;
            first = false;
        }
        io.err << "\n";
    }
    for (const std::string& p : s.published)
        io.err << "wrote " << p << "\n";
}

}  // namespace

int runJobRun(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    options.add_options()
        ("force", "replace outputs that exist")
        ("workers", po::value<int>()->default_value(2), "transform lanes (threads), one per core")
        ("json", "print the summary as one JSON object on standard output")
        ("quiet", "print nothing but errors")
        ("progress", po::value<std::string>()->default_value("auto"),
         "auto (a bar on a terminal, else a line per input), bar, lines or none")
        ("send", po::value<std::string>(), "feed the rows to sluiced at this acknowledged endpoint instead")
        ("events-per-message", po::value<int>()->default_value(500), "--send: rows per request")
        ("timeout", po::value<std::string>()->default_value("5s"), "--send: resend a request unanswered this long")
        ("give-up", po::value<std::string>()->default_value("0"), "--send: stop resending after this long (0: never)");
    addConfigOptions(options);
    po::options_description hidden;
    hidden.add_options()("job", po::value<std::string>(), "job file");
    po::positional_options_description positional;
    positional.add("job", 1);
    po::variables_map vm;
    if (!parseCommandLine(kJobRun, args, options, vm, io, &hidden, &positional))
        return kExitOk;
    const job::JobSpec job = loadJob(vm);
    const bool json = vm.count("json") > 0;
    const bool quiet = vm.count("quiet") > 0;
    std::string mode = vm["progress"].as<std::string>();
    if (mode != "auto" && mode != "bar" && mode != "lines" && mode != "none")
        throw Failure(kExitUsage, "--progress must be auto, bar, lines or none");
    if (mode == "auto")
        mode = (&io.err == &std::cerr && ::isatty(STDERR_FILENO)) ? "bar" : "lines";
    if (quiet)
        mode = "none";

    if (vm.count("send")) {
        job::SendOptions so;
        so.endpoint = vm["send"].as<std::string>();
        so.eventsPerMessage = static_cast<uint32_t>(std::max(1, vm["events-per-message"].as<int>()));
        auto timeout = parseDurationMs(vm["timeout"].as<std::string>());
        auto giveUp = parseDurationMs(vm["give-up"].as<std::string>());
        if (!timeout || !giveUp)
            throw Failure(kExitUsage, "--timeout and --give-up take durations such as 5s or 2m");
        so.timeoutMs = *timeout;
        so.giveUpMs = *giveUp;
        so.force = vm.count("force") > 0;
        so.notice = [&](const std::string& text) {
            if (!quiet)
                io.err << "sluicectl job run: " << text << "\n";
        };
        auto sent = job::sendJob(job, so);
        if (!sent)
            throw Failure(exitFor(sent.status()), sent.status().message());
        const job::SendSummary& s = *sent;
        if (json) {
            Json j;
            j["job"] = job.id;
            j["producer"] = s.producer;
            j["endpoint"] = so.endpoint;
            j["rows"] = s.rows;
            j["sent"] = s.sent;
            j["accepted"] = s.accepted;
            j["rejected"] = s.rejected;
            j["rejected_by_reason"] = s.rejectedByReason;
            j["duplicates"] = s.duplicates;
            j["requests"] = s.requests;
            j["unanswered"] = s.unanswered;
            j["resumed"] = s.resumed;
            j["seconds"] = s.seconds;
            io.out << j.dump() << "\n";
        } else if (!quiet) {
            io.err << "job " << job.id << ": " << s.rows << " row(s) read, " << s.sent << " sent to " << so.endpoint
                   << " as producer " << s.producer << " in " << s.requests << " request(s); " << s.accepted
                   << " accepted, " << s.rejected << " rejected (here or by the daemon), " << s.duplicates
                   << " already committed before (applied zero times)\n";
        }
        if (s.unanswered) {
            io.err << "sluicectl job run: " << s.unanswered
                   << " request(s) were not acknowledged; running the job again is safe (committed requests are "
                      "applied zero times)\n";
            return kExitTempFail;
        }
        return kExitOk;
    }

    const privacy::KeyWrapper wrapper = keyWrapperFor(job, vm);
    job::RunOptions ro;
    ro.force = vm.count("force") > 0;
    ro.workers = std::max(1, vm["workers"].as<int>());
    ProgressBar bar(io.err);
    size_t lastFile = SIZE_MAX;
    uint64_t fileRowsStart = 0;
    ro.progress = [&](const job::Progress& p) {
        if (mode == "bar") {
            bar.update(p);
        } else if (mode == "lines" && p.file != lastFile) {
            if (lastFile != SIZE_MAX)
                io.err << "input " << lastFile + 1 << "/" << p.files << " done (" << p.rows - fileRowsStart
                       << " rows so far in it)\n";
            lastFile = p.file;
            fileRowsStart = p.rows;
        }
    };
    ro.notice = [&](const std::string& text) {
        if (!quiet)
            io.err << "sluicectl job run: " << text << "\n";
    };
    job::JobSummary failed;
    auto summary = job::runJob(job, wrapper, ro, &failed);
    bar.done();
    if (!summary) {
        if (failed.rows > 0 && !quiet) {
            if (json)
                io.out << summaryJson(job, failed, false).dump() << "\n";
            else
                printSummary(io, job, failed);
        }
        throw Failure(failed.rejectLimitExceeded ? kExitDataErr : exitFor(summary.status()), summary.status().message());
    }
    if (json) {
        io.out << summaryJson(job, *summary, true).dump() << "\n";
    } else if (!quiet) {
        if (mode == "lines")
            for (size_t i = 0; i < summary->inputs.size(); ++i) {
                const job::InputSummary& in = summary->inputs[i];
                io.err << "input " << i + 1 << "/" << summary->inputs.size() << " " << in.path << ": " << in.rows
                       << " row(s), " << in.accepted << " accepted, " << in.rejected << " rejected ("
                       << bytesText(in.bytes) << ")\n";
            }
        printSummary(io, job, *summary);
    }
    return kExitOk;
}

int runJobCheck(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    options.add_options()
        ("rows", po::value<int64_t>()->default_value(1000), "rows of each input to check")
        ("force", "existing outputs are fine (a run would replace them)")
        ("json", "print the result as one JSON object");
    po::options_description hidden;
    hidden.add_options()("job", po::value<std::string>(), "job file");
    po::positional_options_description positional;
    positional.add("job", 1);
    po::variables_map vm;
    if (!parseCommandLine(kJobCheck, args, options, vm, io, &hidden, &positional))
        return kExitOk;
    const job::JobSpec job = loadJob(vm);
    const int64_t rows = vm["rows"].as<int64_t>();
    if (rows < 0)
        throw Failure(kExitUsage, "--rows must not be negative");
    auto checked = job::checkJob(job, static_cast<uint64_t>(rows));
    if (!checked)
        throw Failure(checked.status().code() == StatusCode::kIoError ? kExitIoErr : kExitConfig,
                      checked.status().message());
    uint64_t rejected = 0;
    for (const job::CheckedInput& in : checked->inputs)
        rejected += in.rejected;
    const bool outputsInTheWay = !checked->existingOutputs.empty() && !vm.count("force");
    if (vm.count("json")) {
        Json j;
        j["job"] = job.id;
        j["ok"] = rejected == 0 && !outputsInTheWay;
        Json inputs = Json::array();
        for (const job::CheckedInput& in : checked->inputs)
            inputs.push_back({{"file", in.path}, {"rows", in.rows}, {"rejected", in.rejected}, {"examples", in.examples}});
        j["inputs"] = inputs;
        j["existing_outputs"] = checked->existingOutputs;
        io.out << j.dump() << "\n";
    } else {
        io.out << "job " << job.id << " (" << job.path << "): contract " << job.contract().ref << ", group " << job.group
               << ", " << job.input.files.size() << " input(s), " << job.outputPaths().size() << " output(s)\n";
        for (const job::CheckedInput& in : checked->inputs) {
            io.out << "  " << in.path << ": " << in.rows << " row(s) checked, " << in.rejected << " would be rejected\n";
            for (const std::string& e : in.examples)
                io.out << "    " << e << "\n";
        }
        for (const std::string& p : checked->existingOutputs)
            io.out << "  output exists: " << p << (vm.count("force") ? " (--force: it would be replaced)" : "") << "\n";
    }
    if (outputsInTheWay) {
        io.err << "sluicectl job check: output(s) exist; a run needs --force to replace them\n";
        return kExitConfig;
    }
    return rejected ? kExitDataErr : kExitOk;
}

}  // namespace sluice::cli
