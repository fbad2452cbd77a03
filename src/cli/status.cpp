// sluicectl status: the daemon's health at a glance, from its metrics or, when it is down, from
// the database it left behind.
#include <boost/program_options.hpp>

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/clock.h"
#include "cli/metrics_client.h"
#include "core/reason.h"
#include "core/time_format.h"
#include "store/committed_reader.h"
#include "store/summary.h"

namespace sluice::cli {
namespace {

const Command kStatus = {
    "status",
    "[options]",
    "Prints a summary of the running daemon's metrics: events received, committed, rejected by\n"
    "reason, duplicates and late events, batches, commit latency, keys, queue depths and the age\n"
    "of the last commit. When the daemon does not answer, says so and summarises the database.",
    R"(The metrics URL is --metrics, else http://<metrics.listen>/metrics of the configuration
(--config; the embedded configuration listens on 127.0.0.1:9464).

Exit codes: 0 the daemon answered, 69 it did not (the database summary follows when there is a
database), 78 bad configuration.

Examples:
  sluicectl status
  sluicectl status --config /etc/sluice/sluiced.conf
  sluicectl status --metrics http://127.0.0.1:9464/metrics
)",
};

std::string num(double v)
{
    std::ostringstream s;
    if (std::isfinite(v) && std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e15)
        s << static_cast<int64_t>(std::llround(v));
    else
        s << std::fixed << std::setprecision(2) << v;
    return s.str();
}

std::string seconds(double s)
{
    std::ostringstream o;
    o << std::fixed;
    if (s < 0.001)
        o << std::setprecision(0) << s * 1e6 << " us";
    else if (s < 1)
        o << std::setprecision(s < 0.01 ? 2 : 1) << s * 1e3 << " ms";
    else
        o << std::setprecision(2) << s << " s";
    return o.str();
}

std::string bytes(double b)
{
    std::ostringstream o;
    o << std::fixed << std::setprecision(1);
    if (b < 1024)
        o << std::setprecision(0) << b << " B";
    else if (b < 1024 * 1024)
        o << b / 1024 << " KiB";
    else if (b < 1024.0 * 1024 * 1024)
        o << b / (1024 * 1024) << " MiB";
    else
        o << b / (1024.0 * 1024 * 1024) << " GiB";
    return o.str();
}

void line(std::ostream& out, const char* label, const std::string& text)
{
    std::string l = std::string(label) + ":";
    l.resize(14, ' ');
    out << "  " << l << text << "\n";
}

void printMetrics(std::ostream& out, const Scrape& m, const std::string& url)
{
    std::string version = "?";
    for (const Sample* s : m.series("sluice_build_info"))
        for (const auto& [k, v] : s->labels)
            if (k == "version")
                version = v;
    out << "sluiced " << version << " is running (metrics from " << url << ")\n";

    const double received = m.sum("sluice_events_received_total");
    const double committed = m.sum("sluice_events_committed_total");
    const double rejected = m.sum("sluice_events_rejected_total");
    const double duplicates = m.sum("sluice_events_duplicate_total");
    std::string events = num(received) + " received, " + num(committed) + " committed, " + num(rejected) +
                         " rejected, " + num(duplicates) + " duplicates, " + num(m.sum("sluice_events_late_total")) +
                         " late";
    const double inFlight = received - committed - rejected - duplicates;
    if (inFlight > 0)
        events += " (" + num(inFlight) + " on their way to a commit)";
    line(out, "events", events);

    std::string reasons;
    for (const Sample* s : m.series("sluice_events_rejected_total")) {
        if (s->value <= 0)
            continue;
        for (const auto& [k, v] : s->labels)
            if (k == "reason")
                reasons += (reasons.empty() ? "" : ", ") + v + " " + num(s->value);
    }
    if (!reasons.empty())
        line(out, "rejected", reasons);

    std::string batches = num(m.sum("sluice_batches_total")) + " committed";
    const double batchCount = m.sum("sluice_batch_events_count");
    if (batchCount > 0)
        batches += ", " + num(std::round(m.sum("sluice_batch_events_sum") / batchCount)) + " events per batch on average";
    const double last = m.sum("sluice_last_commit_timestamp_seconds");
    if (last > 0)
        batches += "; last commit " + humanDuration(SystemClock::instance().wallMs() - static_cast<int64_t>(last * 1000)) + " ago";
    else
        batches += "; no commit yet";
    line(out, "batches", batches);

    std::string latency;
    auto p50 = m.quantile("sluice_commit_seconds", 0.5);
    auto p99 = m.quantile("sluice_commit_seconds", 0.99);
    if (p50 && p99)
        latency = "commit (fsync) p50 " + seconds(*p50) + ", p99 " + seconds(*p99);
    auto b50 = m.quantile("sluice_batch_latency_seconds", 0.5);
    auto b99 = m.quantile("sluice_batch_latency_seconds", 0.99);
    if (b50 && b99)
        latency += (latency.empty() ? "" : "; ") + std::string("batch close to commit p50 ") + seconds(*b50) +
                   ", p99 " + seconds(*b99);
    if (!latency.empty())
        line(out, "latency", latency + " (from histograms)");

    line(out, "keys", num(m.sum("sluice_keys_created_total")) + " created, " +
                          num(m.sum("sluice_keys_shredded_total")) + " shredded by retention, " +
                          num(m.sum("sluice_keys_cached")) + " cached");
    std::string queues;
    for (const Sample* s : m.series("sluice_queue_depth"))
        for (const auto& [k, v] : s->labels)
            if (k == "queue")
                queues += (queues.empty() ? "" : ", ") + v + " " + num(s->value);
    if (!queues.empty())
        line(out, "queues", queues + " batch(es) waiting");
    // One line per exporter: its state, where its cursor is, how far behind.
    for (const Sample* b : m.series("sluice_export_batch")) {
        std::string name, type;
        for (const auto& [k, v] : b->labels) {
            if (k == "exporter")
                name = v;
            if (k == "type")
                type = v;
        }
        auto of = [&](const char* metric) {
            for (const Sample* s : m.series(metric))
                for (const auto& [k, v] : s->labels)
                    if (k == "exporter" && v == name)
                        return s->value;
            return 0.0;
        };
        const char* state = of("sluice_export_refused") > 0 ? "REFUSED (stopped, see the log)"
                            : of("sluice_export_up") > 0     ? "up"
                                                             : "DOWN";
        line(out, "exporter", name + " (" + type + "): " + state +
                                  ", batch " + num(b->value) + ", lag " + num(of("sluice_export_lag_batches")) +
                                  " batch(es) / " + seconds(of("sluice_export_lag_seconds")) + "; " +
                                  num(of("sluice_export_records_total")) + " records, " +
                                  bytes(of("sluice_export_bytes_total")) + ", " + num(of("sluice_export_errors_total")) +
                                  " errors");
    }
    line(out, "ingest", num(m.sum("sluice_ingest_messages_total")) + " messages, " +
                            bytes(m.sum("sluice_ingest_bytes_total")) + "; " + num(m.sum("sluice_replies_total")) +
                            " replies (" + num(m.sum("sluice_replies_dropped_total")) + " dropped); paused " +
                            seconds(m.sum("sluice_ingest_paused_microseconds_total") / 1e6) + " by backpressure");
}

void printDatabase(std::ostream& out, store::Db& db, const std::string& path)
{
    out << "From the database " << path << ":\n";
    const store::DatabaseSummary s = store::summarizeDatabase(db);
    if (const auto& b = s.batches) {
        std::string batches = std::to_string(b->batches);
        if (b->lastCommitMs)
            batches += ", the last committed " + isoTimeMs(*b->lastCommitMs) + " (" +
                       humanDuration(SystemClock::instance().wallMs() - *b->lastCommitMs) + " ago)";
        line(out, "batches", batches);
        line(out, "events", std::to_string(b->received) + " received, " + std::to_string(b->committed) +
                                " committed, " + std::to_string(b->rejected) + " rejected, " +
                                std::to_string(b->duplicates) + " duplicates, " + std::to_string(b->late) + " late");
    }
    std::string reasons;
    for (const auto& [reason, count] : s.deadLettersByReason.value_or(std::vector<std::pair<std::string, int64_t>>{}))
        reasons += (reasons.empty() ? "" : ", ") + reason + " " + std::to_string(count);
    line(out, "dead letters", reasons.empty() ? "none stored" : reasons + " (stored, within their retention)");
    if (s.latency && s.latency->batches > 0)
        line(out, "latency", "batch open to commit over the last " + std::to_string(s.latency->batches) +
                                 " batch(es): average " + humanDuration(llround(s.latency->averageMs)) + ", max " +
                                 humanDuration(s.latency->maxMs));
    std::string keys;
    for (const auto& [kind, count] : s.keysByKind.value_or(std::vector<std::pair<std::string, int64_t>>{}))
        keys += (keys.empty() ? "" : ", ") + std::to_string(count) + " " + kind;
    if (s.shredding)
        keys = (keys.empty() ? "no keys" : keys) + "; shredded " + std::to_string(s.shredding->keys) + " key(s) in " +
               std::to_string(s.shredding->operations) + " operation(s)";
    line(out, "keys", keys);
    if (s.producers)
        line(out, "producers", std::to_string(s.producers->producers) + " acknowledged producer(s), " +
                                   std::to_string(s.producers->marks) + " request mark(s) kept for deduplication");
    if (auto cursors = store::loadCursors(db)) {
        for (const auto& [name, cursor] : *cursors)
            line(out, "exporter", name + ": every batch up to " + std::to_string(cursor.batchId) +
                                      " is in its sink (shredding up to " + std::to_string(cursor.shredId) + ")");
    }
}

}  // namespace

int runStatus(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    options.add_options()
        ("metrics", po::value<std::string>()->value_name("URL"), "the metrics endpoint")
        ("timeout", po::value<std::string>()->default_value("2s")->value_name("DURATION"), "how long to wait for it");
    addConfigOptions(options);
    po::variables_map vm;
    if (!parseCommandLine(kStatus, args, options, vm, io))
        return kExitOk;
    auto timeout = parseDurationMs(vm["timeout"].as<std::string>());
    if (!timeout || *timeout < 1 || *timeout > 600'000)
        throw Failure(kExitUsage, "--timeout: not a duration from 1ms to 10m");

    std::optional<config::Config> cfg;
    if (hasConfigArguments(vm) || !vm.count("metrics"))
        cfg = loadToolConfig(vm);
    // Without --metrics the configuration says where the daemon listens; a configuration with
    // metrics off names no URL, and guessing one could reach another daemon.
    std::string url;
    if (vm.count("metrics"))
        url = vm["metrics"].as<std::string>();
    else if (cfg && !cfg->metricsListen.empty())
        url = "http://" + cfg->metricsListen + "/metrics";
    const bool metricsOff = url.empty();
    const bool ephemeral = !vm.count("metrics") && url.size() > 10 && url.ends_with(":0/metrics");

    Result<HttpResponse> response = Status::error(StatusCode::kUnavailable, "no metrics URL");
    if (!ephemeral && !metricsOff)
        response = httpGet(url, static_cast<int>(*timeout));
    if (response && response->status == 200) {
        auto scrape = Scrape::parse(response->body);
        if (!scrape)
            throw Failure(kExitDataErr, url + ": " + scrape.status().message());
        printMetrics(io.out, *scrape, url);
        io.out.flush();
        return kExitOk;
    }
    if (!response && response.status().code() == StatusCode::kInvalidArgument)
        throw Failure(kExitUsage, response.status().message());
    if (metricsOff)
        io.out << "the configuration has no metrics endpoint (metrics.listen is empty): give --metrics with the URL "
                  "of the daemon's, if it has one\n";
    else if (ephemeral)
        io.out << "the configuration's metrics.listen uses an ephemeral port (:0): give --metrics with the URL "
                  "from sluiced's 'metrics on' log line\n";
    else if (!response && response.status().code() == StatusCode::kUnavailable)
        io.out << "sluiced is not running: nothing listens at " << url << "\n";
    else if (!response)
        io.out << "sluiced does not answer at " << url << ": " << response.status().message() << "\n";
    else
        io.out << "the metrics endpoint " << url << " answered HTTP " << response->status << "\n";

    std::error_code ec;
    if (cfg && std::filesystem::exists(cfg->store.database, ec)) {
        store::Db db = openDatabase(*cfg, false);
        printDatabase(io.out, db, cfg->store.database);
    } else if (cfg) {
        io.out << "no database at " << cfg->store.database << " (see --config and --state-dir)\n";
    }
    io.out.flush();
    return kExitUnavailable;
}

}  // namespace sluice::cli
