// sluicectl send: a producer for operators and scripts (JSONL in, a delivery report out).
#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/time_format.h"
#include "ingest/producer.h"
#include "privacy/secret.h"
#include "workload/generator.h"

namespace sluice::cli {
namespace {

const Command kSend = {
    "send",
    "[FILE|-] [options]",
    "Sends JSONL events (one JSON object per line) from FILE or standard input to sluiced,\n"
    "several per message, and prints a delivery report.",
    R"(Acknowledged mode (default; the daemon's ROUTER endpoint, tcp://127.0.0.1:7401): each request
carries this producer's id and a sequence number; the daemon answers after the batch holding it
is committed. Requests without an answer are resent unchanged (a retry of a committed request is
answered "duplicate" and applied zero times), with back-off, until --give-up (0: never).
--fire-and-forget: a PUSH socket to the PULL endpoint (tcp://127.0.0.1:7400); nothing comes back.

The report counts events, except where it says requests: events and requests sent, requests
acknowledged, events accepted and rejected (by reason; the events of a request refused as a
whole count as rejected), duplicates (events of requests that an earlier sender with the same
producer id and sequence numbers had already committed: applied zero times now; like the
daemon's sluice_events_duplicate_total), resends, and requests given up on. Every event sent is
counted once: events = accepted + rejected + duplicates + the events of unanswered requests.
--json prints it as one object ("duplicates" in events, "duplicate_requests" in requests).

Exit codes: 0 every request answered, 75 some request was neither acknowledged nor rejected
(given up), 65 with --fail-on-reject when an event was rejected, 74 the input could not be read.

Examples:
  sluicectl send events.jsonl
  producer | sluicectl send --endpoint tcp://10.0.0.5:7401 --events-per-message 500
  sluicectl send --generate 100000 --invalid-fraction 0.01 --json
  sluicectl send --producer-id pos-17 --first-seq 1 --give-up 2m replay.jsonl
)",
};

struct Settings {
    bool acknowledged = true;
    std::string endpoint;
    uint64_t eventsPerMessage = 100;
    uint64_t maxMessageBytes = 1024 * 1024;
    ingest::AckProducer::Options ack;
    int64_t lingerMs = 5000;
};

// Groups event lines into messages and hands each to the producer.
class Sender {
public:
    explicit Sender(const Settings& s) : settings_(s) {}

    void connect()
    {
        try {
            if (settings_.acknowledged) {
                ingest::AckProducer::Options o = settings_.ack;
                o.endpoint = settings_.endpoint;
                auto p = ingest::AckProducer::connect(std::move(o));
                if (!p)
                    throw Failure(kExitUsage, p.status().message());
                ack_ = std::move(*p);
            } else {
                auto p = ingest::PushProducer::connect(settings_.endpoint, 1000, settings_.ack.curve);
                if (!p)
                    throw Failure(kExitUsage, p.status().message());
                push_ = std::move(*p);
            }
        } catch (const Failure&) {
            throw;
        } catch (const std::exception& e) {
            throw Failure(kExitUnavailable, std::string("ZeroMQ: ") + e.what());
        }
    }

    void add(std::string_view line)
    {
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos)
            return;
        if (events_ > 0 && body_.size() + 1 + line.size() > settings_.maxMessageBytes)
            flushMessage();
        if (events_ > 0)
            body_.push_back('\n');
        body_.append(line);
        if (++events_ >= settings_.eventsPerMessage)
            flushMessage();
    }

    void finish()
    {
        flushMessage();
        try {
            if (ack_) {
                check(ack_->flush(), "waiting for acknowledgements");
            } else if (push_) {
                push_->close(static_cast<int>(settings_.lingerMs));
            }
        } catch (const Failure&) {
            throw;
        } catch (const std::exception& e) {
            throw Failure(kExitIoErr, std::string("ZeroMQ: ") + e.what());
        }
    }

    const ingest::ProducerReport& report() const { return ack_ ? ack_->report() : pushReport_; }
    std::string producerId() const { return ack_ ? ack_->producerId() : std::string(); }

private:
    void flushMessage()
    {
        if (events_ == 0)
            return;
        try {
            if (ack_) {
                auto seq = ack_->send(std::move(body_), static_cast<uint32_t>(events_));
                if (!seq)
                    check(seq.status(), "sending");
            } else {
                check(push_->send(body_), "sending");
                ++pushReport_.requests;
                pushReport_.events += events_;
            }
        } catch (const Failure&) {
            throw;
        } catch (const std::exception& e) {
            throw Failure(kExitIoErr, std::string("ZeroMQ: ") + e.what());
        }
        body_.clear();
        events_ = 0;
    }

    const Settings& settings_;
    std::unique_ptr<ingest::AckProducer> ack_;
    std::unique_ptr<ingest::PushProducer> push_;
    ingest::ProducerReport pushReport_;
    std::string body_;
    uint64_t events_ = 0;
};

uint64_t positive(const po::variables_map& vm, const char* name, uint64_t max)
{
    const int64_t v = vm[name].as<int64_t>();
    if (v < 1 || static_cast<uint64_t>(v) > max)
        throw Failure(kExitUsage, std::string("--") + name + " must be from 1 to " + std::to_string(max));
    return static_cast<uint64_t>(v);
}

int64_t duration(const po::variables_map& vm, const char* name)
{
    auto ms = parseDurationMs(vm[name].as<std::string>());
    if (!ms || *ms < 0)
        throw Failure(kExitUsage, std::string("--") + name + ": '" + vm[name].as<std::string>() +
                                      "' is not a duration such as 500ms, 5s, 2m");
    return *ms;
}

void printReport(Io& io, const Settings& s, const Sender& sender, double seconds, bool json)
{
    const ingest::ProducerReport& r = sender.report();
    if (json) {
        nlohmann::ordered_json j;
        j["mode"] = s.acknowledged ? "acknowledged" : "fire-and-forget";
        j["endpoint"] = s.endpoint;
        if (s.acknowledged)
            j["producer"] = sender.producerId();
        j["events"] = r.events;
        j["requests"] = r.requests;
        if (s.acknowledged) {
            j["acknowledged"] = r.acknowledged;
            j["failed"] = r.failed;
            j["accepted"] = r.accepted;
            j["rejected"] = r.rejected;
            nlohmann::ordered_json reasons = nlohmann::ordered_json::object();
            for (size_t i = 0; i < kReasonCount; ++i)
                if (r.byReason[i])
                    reasons[std::string(kReasonCodes[i])] = r.byReason[i];
            j["rejected_by_reason"] = reasons;
            j["duplicates"] = r.duplicateEvents;
            j["duplicate_requests"] = r.duplicateRequests;
            j["retries"] = r.retries;
            j["unanswered"] = r.unanswered;
        }
        j["seconds"] = seconds;
        io.out << j.dump() << "\n";
        return;
    }
    std::ostringstream o;
    o << std::fixed << std::setprecision(2);
    o << "sent " << r.events << " event(s) in " << r.requests << (s.acknowledged ? " request(s)" : " message(s)")
      << " to " << s.endpoint;
    if (s.acknowledged)
        o << " as producer " << sender.producerId();
    o << " in " << seconds << " s";
    if (seconds > 0 && r.events > 0)
        o << " (" << std::setprecision(0) << static_cast<double>(r.events) / seconds << " events/s)";
    o << "\n";
    if (!s.acknowledged) {
        o << "fire-and-forget: nothing is acknowledged; check the daemon's metrics or database for what arrived\n";
    } else {
        o << "acknowledged: " << r.acknowledged << " request(s); events accepted " << r.accepted << ", rejected "
          << r.rejected << "\n";
        if (r.rejected) {
            o << "rejected by reason:";
            const char* sep = " ";
            for (size_t i = 0; i < kReasonCount; ++i) {
                if (r.byReason[i]) {
                    o << sep << kReasonCodes[i] << " " << r.byReason[i];
                    sep = ", ";
                }
            }
            o << "\n";
        }
        if (r.duplicateRequests)
            o << "duplicates: " << r.duplicateEvents << " event(s) in " << r.duplicateRequests
              << " request(s) already committed by an earlier sender with this producer id; applied zero times now\n";
        o << "whole requests refused: " << r.failed << "; resends: " << r.retries << "; unanswered: " << r.unanswered
          << " request(s)\n";
    }
    io.out << o.str();
}

}  // namespace

int runSend(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    options.add_options()
        ("endpoint,e", po::value<std::string>()->value_name("URL"),
         "daemon endpoint (default tcp://127.0.0.1:7401, or :7400 with --fire-and-forget)")
        ("fire-and-forget", "PUSH to the PULL endpoint; no acknowledgements")
        ("events-per-message,n", po::value<int64_t>()->default_value(100)->value_name("N"), "events per message")
        ("max-message-size", po::value<std::string>()->default_value("1M")->value_name("SIZE"),
         "start a new message before one would exceed SIZE (the daemon's ingest.max_message_size)")
        ("window", po::value<int64_t>()->default_value(64)->value_name("N"), "requests in flight (acknowledged)")
        ("timeout", po::value<std::string>()->default_value("5s")->value_name("DURATION"),
         "resend a request unanswered for this long (doubling up to 30s)")
        ("give-up", po::value<std::string>()->default_value("0")->value_name("DURATION"),
         "stop retrying a request after this long (0: never)")
        ("producer-id", po::value<std::string>()->value_name("ID"), "producer id (default: random)")
        ("first-seq", po::value<int64_t>()->default_value(1)->value_name("N"), "sequence number of the first request")
        ("generate", po::value<int64_t>()->value_name("N"), "send N reference-workload events instead of a file")
        ("invalid-fraction", po::value<double>()->default_value(0.0)->value_name("F"),
         "--generate: share of invalid events (0..1)")
        ("seed", po::value<int64_t>()->default_value(1)->value_name("N"), "--generate: generator seed")
        ("event-time-span", po::value<std::string>()->value_name("DURATION"),
         "--generate: event times spread evenly over DURATION, the last one now (default: none)")
        ("curve-server-key", po::value<std::string>()->value_name("KEY"),
         "CURVE: the daemon's public key (40 Z85 characters or 64 hex digits)")
        ("curve-secret-key-file", po::value<std::string>()->value_name("FILE"),
         "CURVE: this producer's secret key (sluicectl curve-keygen)")
        ("fail-on-reject", "exit 65 when any event was rejected")
        ("quiet,q", "no report (errors only)")
        ("json", "print the report as one JSON object");
    po::options_description hidden;
    hidden.add_options()("input", po::value<std::string>(), "input file");
    po::positional_options_description positional;
    positional.add("input", 1);
    po::variables_map vm;
    if (!parseCommandLine(kSend, args, options, vm, io, &hidden, &positional))
        return kExitOk;

    Settings s;
    s.acknowledged = !vm.count("fire-and-forget");
    s.endpoint = vm.count("endpoint") ? vm["endpoint"].as<std::string>()
                                      : (s.acknowledged ? "tcp://127.0.0.1:7401" : "tcp://127.0.0.1:7400");
    s.eventsPerMessage = positive(vm, "events-per-message", 1'000'000);
    auto maxBytes = parseSize(vm["max-message-size"].as<std::string>());
    if (!maxBytes || *maxBytes < 64)
        throw Failure(kExitUsage, "--max-message-size: not a size of at least 64 bytes (suffixes k, M, G)");
    s.maxMessageBytes = *maxBytes;
    s.ack.window = positive(vm, "window", 1'000'000);
    s.ack.timeoutMs = duration(vm, "timeout");
    if (s.ack.timeoutMs < 1)
        throw Failure(kExitUsage, "--timeout must be at least 1ms");
    s.ack.giveUpMs = duration(vm, "give-up");
    if (vm.count("curve-server-key") != vm.count("curve-secret-key-file"))
        throw Failure(kExitUsage, "CURVE needs both --curve-server-key and --curve-secret-key-file");
    if (vm.count("curve-server-key")) {
        auto server = curveKeyFromText(vm["curve-server-key"].as<std::string>());
        if (!server)
            throw Failure(kExitUsage, "--curve-server-key: not a CURVE public key (40 Z85 characters or 64 hex digits)");
        auto secret = privacy::readSecretFile(vm["curve-secret-key-file"].as<std::string>(), 32);
        if (!secret)
            throw Failure(kExitConfig, secret.status().message());
        s.ack.curve.serverPublicKey = *server;
        s.ack.curve.secretKey.assign(reinterpret_cast<const char*>(secret->data()), secret->size());
    }
    s.lingerMs = s.ack.timeoutMs;
    if (vm.count("producer-id"))
        s.ack.producerId = vm["producer-id"].as<std::string>();
    const int64_t firstSeq = vm["first-seq"].as<int64_t>();
    if (firstSeq < 0)
        throw Failure(kExitUsage, "--first-seq must not be negative");
    s.ack.firstSeq = static_cast<uint64_t>(firstSeq);
    const double invalid = vm["invalid-fraction"].as<double>();
    if (!(invalid >= 0.0 && invalid <= 1.0))
        throw Failure(kExitUsage, "--invalid-fraction must be from 0 to 1");
    const bool generate = vm.count("generate") > 0;
    if (generate && vm.count("input"))
        throw Failure(kExitUsage, "--generate replaces the input file; give one or the other");
    if (vm.count("event-time-span") && !generate)
        throw Failure(kExitUsage, "--event-time-span belongs to --generate");
    if (!s.acknowledged && (vm.count("producer-id") || vm["first-seq"].as<int64_t>() != 1))
        throw Failure(kExitUsage, "--producer-id and --first-seq belong to acknowledged mode");

    Sender sender(s);
    sender.connect();
    const auto start = std::chrono::steady_clock::now();
    if (generate) {
        const int64_t n = vm["generate"].as<int64_t>();
        if (n < 0)
            throw Failure(kExitUsage, "--generate must not be negative");
        workload::Options wo;
        wo.seed = static_cast<uint64_t>(vm["seed"].as<int64_t>());
        wo.invalidFraction = invalid;
        if (vm.count("event-time-span")) {
            const int64_t span = duration(vm, "event-time-span");
            if (span < 1)
                throw Failure(kExitUsage, "--event-time-span must be at least 1ms");
            wo.stepMs = std::max<int64_t>(1, span / std::max<int64_t>(1, n));
            wo.baseTimeMs = SystemClock::instance().wallMs() - wo.stepMs * n;
        }
        workload::Generator generator(wo);
        std::string line;
        for (int64_t i = 0; i < n; ++i) {
            line.clear();
            generator.next(line);
            sender.add(line);
        }
    } else {
        const std::string input = vm.count("input") ? vm["input"].as<std::string>() : std::string("-");
        std::ifstream file;
        std::istream* in = &io.in;
        if (input != "-") {
            file.open(input, std::ios::binary);
            if (!file)
                throw Failure(kExitIoErr, "cannot open " + input);
            in = &file;
        }
        std::string line;
        while (std::getline(*in, line))
            sender.add(line);
        if (in->bad())
            throw Failure(kExitIoErr, "reading " + (input == "-" ? std::string("standard input") : input) + " failed");
    }
    sender.finish();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    const ingest::ProducerReport& r = sender.report();
    if (!vm.count("quiet"))
        printReport(io, s, sender, seconds, vm.count("json") > 0);
    io.out.flush();
    if (r.unanswered) {
        io.err << "sluicectl send: " << r.unanswered
               << " request(s) were neither acknowledged nor rejected (given up after "
               << vm["give-up"].as<std::string>()
               << "); their events may or may not have been committed. Sending the same input again with the "
                  "same --producer-id, --first-seq and --events-per-message is safe: committed requests are "
                  "applied zero times\n";
        return kExitTempFail;
    }
    if (vm.count("fail-on-reject") && r.rejected)
        return kExitDataErr;
    return kExitOk;
}

const Command kCurveKeygen = {
    "curve-keygen",
    "FILE [options]",
    "Creates a CURVE key pair for sluiced or for a producer: the secret key goes into FILE (created\n"
    "with mode 0600, never overwritten), the public key is printed (Z85).",
    R"(For the daemon: FILE is ingest.curve_secret_key_file, and producers pass the printed key as
--curve-server-key. For a producer: FILE is its --curve-secret-key-file, and the printed key goes
into the daemon's ingest.curve_clients_file.)",
};

int runCurveKeygen(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    po::options_description hidden;
    hidden.add_options()("file", po::value<std::string>(), "secret key file");
    po::positional_options_description positional;
    positional.add("file", 1);
    po::variables_map vm;
    if (!parseCommandLine(kCurveKeygen, args, options, vm, io, &hidden, &positional))
        return kExitOk;
    if (!vm.count("file"))
        throw Failure(kExitUsage, "curve-keygen needs the FILE to write the secret key to");
    auto pair = ingest::newCurveKeyPair();
    if (!pair)
        throw Failure(kExitSoftware, pair.status().message());
    std::string hex = toHex(pair->secretKey) + "\n";
    Status written = privacy::writeNewSecretFile(vm["file"].as<std::string>(), hex);
    wipe(pair->secretKey);
    wipe(hex);
    if (!written)
        throw Failure(kExitIoErr, written.message());
    io.out << toZ85(pair->publicKey) << "\n";
    return kExitOk;
}

}  // namespace sluice::cli
