// sluicectl tap: subscribe to a stream exporter and print committed records live.
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/time_format.h"
#include "export/stream_sink.h"
#include "export/stream_subscriber.h"

namespace sluice::cli {
namespace {

const Command kTap = {
    "tap",
    "[--output NAME | --contract REF | --aggregation NAME | --forget] [options]",
    "Prints committed records live, as the stream exporter publishes them.",
    R"(Connects a ZeroMQ SUB socket to a stream exporter of the configuration (--exporter NAME, or
the only one) or to --endpoint, subscribes to one source's topic (all topics when none is
given) and prints each record's JSON on a line of its own, as it is published after commit.
--header prints {"topic": ..., "header": {...}, "record": {...}} instead. A gap in a batch's
index sequence (a message dropped at the high-water mark, or a late join mid-batch) is reported
on standard error.

Exit codes: 0 after --limit records (or --duration), 69 nothing to connect to, 78 configuration.

Examples:
  sluicectl tap --config /etc/sluice/sluiced.conf --output analytics --limit 10
  sluicectl tap --endpoint tcp://127.0.0.1:7410 --header
)",
};

}  // namespace

int runTap(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    options.add_options()
        ("output", po::value<std::string>()->value_name("NAME"), "a derived output's records")
        ("contract", po::value<std::string>()->value_name("REF"), "a contract's events (as stored)")
        ("aggregation", po::value<std::string>()->value_name("NAME"), "an aggregation's final windows")
        ("forget", "shredding notices (forget, retention)")
        ("exporter", po::value<std::string>()->value_name("NAME"), "the stream exporter to tap")
        ("endpoint", po::value<std::string>()->value_name("URL"), "connect here (the topic is then the source's default)")
        ("header", "print the topic and header with each record")
        ("limit", po::value<int64_t>()->default_value(0)->value_name("N"), "stop after N records (0: never)")
        ("duration", po::value<std::string>()->value_name("DURATION"), "stop after this long");
    addConfigOptions(options);
    po::variables_map vm;
    if (!parseCommandLine(kTap, args, options, vm, io))
        return kExitOk;
    const int picks = static_cast<int>(vm.count("output") + vm.count("contract") + vm.count("aggregation") +
                                       vm.count("forget"));
    if (picks > 1)
        throw Failure(kExitUsage, "give at most one of --output, --contract, --aggregation and --forget");
    const int64_t limit = vm["limit"].as<int64_t>();
    if (limit < 0)
        throw Failure(kExitUsage, "--limit must be 0 (no limit) or more");
    int64_t durationMs = 0;
    if (vm.count("duration")) {
        auto d = parseDurationMs(vm["duration"].as<std::string>());
        if (!d || *d <= 0)
            throw Failure(kExitUsage, "--duration: not a duration");
        durationMs = *d;
    }

    // The topic: the source's topic in the chosen exporter (or its default name).
    std::string endpoint = vm.count("endpoint") ? vm["endpoint"].as<std::string>() : std::string();
    std::vector<std::string> topics;
    const ExporterSpec* exporter = nullptr;
    std::optional<config::Config> cfg;
    if (endpoint.empty() || vm.count("config") || vm.count("exporter")) {
        cfg = loadToolConfig(vm);
        for (const ExporterSpec& e : cfg->pipelineSpec->exporters) {
            if (e.type != ExporterType::kStream)
                continue;
            if (vm.count("exporter") ? e.name == vm["exporter"].as<std::string>() : !exporter)
                exporter = &e;
        }
        if (!exporter && endpoint.empty())
            throw Failure(kExitUnavailable, vm.count("exporter") ? "no stream exporter '" + vm["exporter"].as<std::string>() + "'"
                                                                 : "the configuration has no stream exporter");
        if (exporter && endpoint.empty())
            endpoint = exporter->endpoint;
    }
    auto topicOf = [&](ExportSourceSpec::Kind kind, const std::string& name) -> std::string {
        if (exporter) {
            for (const ExportSourceSpec& s : exporter->sources)
                if (s.kind == kind && s.name == name)
                    return s.topic;
            throw Failure(kExitUsage, "exporter '" + exporter->name + "' does not export '" + name + "'");
        }
        if (kind == ExportSourceSpec::Kind::kContract) {
            ContractSpec c;
            c.ref = name;
            return "sluice." + c.ident();
        }
        return "sluice." + name;
    };
    if (vm.count("output"))
        topics.push_back(topicOf(ExportSourceSpec::Kind::kOutput, vm["output"].as<std::string>()));
    if (vm.count("contract"))
        topics.push_back(topicOf(ExportSourceSpec::Kind::kContract, vm["contract"].as<std::string>()));
    if (vm.count("aggregation"))
        topics.push_back(topicOf(ExportSourceSpec::Kind::kAggregation, vm["aggregation"].as<std::string>()));
    if (vm.count("forget"))
        topics.push_back(exports::kForgetTopic);

    auto sub = exports::StreamSubscriber::connect(endpoint, topics);
    if (!sub)
        throw Failure(kExitUnavailable, sub.status().message());
    const bool header = vm.count("header") > 0;
    // Per topic: the batch and index expected next.
    std::map<std::string, std::pair<int64_t, int64_t>> expected;
    int64_t printed = 0;
    const auto start = std::chrono::steady_clock::now();
    while (limit == 0 || printed < limit) {
        int wait = 500;
        if (durationMs) {
            const auto left = durationMs - std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::steady_clock::now() - start)
                                               .count();
            if (left <= 0)
                break;
            wait = static_cast<int>(std::min<int64_t>(left, 500));
        }
        auto m = (*sub)->receive(wait);
        if (!m)
            throw Failure(kExitIoErr, m.status().message());
        if (!*m)
            continue;
        const auto h = nlohmann::json::parse((*m)->header, nullptr, false);
        if (h.is_object() && h.contains("batch") && h.contains("index")) {
            const int64_t batch = h["batch"].get<int64_t>();
            const int64_t index = h["index"].get<int64_t>();
            const int64_t count = h.value("count", int64_t{0});
            auto it = expected.find((*m)->topic);
            // (-1, 0): the last batch was complete, any later one starts at index 0.
            const bool gap = it == expected.end() ? index != 0
                             : it->second.first < 0 ? index != 0
                                                    : batch != it->second.first || index != it->second.second;
            if (gap)
                io.err << "sluicectl tap: gap on " << (*m)->topic << " at batch " << batch << " index " << index
                       << " (a message was dropped, or tap joined mid-batch)\n";
            expected[(*m)->topic] =
                index + 1 >= count ? std::make_pair(int64_t{-1}, int64_t{0}) : std::make_pair(batch, index + 1);
        }
        if (header)
            io.out << "{\"topic\":" << nlohmann::json((*m)->topic).dump() << ",\"header\":" << (*m)->header
                   << ",\"record\":" << (*m)->value << "}\n";
        else
            io.out << (*m)->value << "\n";
        io.out.flush();
        ++printed;
    }
    return kExitOk;
}

}  // namespace sluice::cli
