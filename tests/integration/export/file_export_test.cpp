// The file exporter against the real sluiced: what the files hold is what was committed, once,
// across SIGTERM and across kill -9 at random moments; no partial file is ever visible; forgetting
// a subject while exporters run works (the WAL is truncated) and reaches the forget log.
//
// SLUICE_EXPORT_KILLS / SLUICE_EXPORT_EVENTS size the kill loop (the slow suite runs a long one).
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <thread>

#include "cli/cli.h"
#include "durability/support.h"
#include "export_files.h"
#include "harness.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

size_t fromEnv(const char* name, size_t fallback)
{
    const char* v = std::getenv(name);
    return v && *v ? static_cast<size_t>(std::strtoull(v, nullptr, 10)) : fallback;
}

void writeText(const std::string& path, const std::string& text)
{
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
}

// The acknowledged-only daemon with one file exporter of everything (keys included).
DaemonOptions exportingDaemon(const TempDir& dir, const std::string& interval, const std::string& compression)
{
    std::filesystem::create_directories(dir.file("exporters"));
    writeText(dir.file("exporters/lake.json"),
              R"({"name": "lake", "type": "file", "contracts": ["acme/checkout/1.0.0"], "outputs": ["analytics"],
                  "aggregations": ["revenue_by_country"], "keys": true, "directory": "export/lake",
                  "compression": ")" + compression + R"(", "interval": ")" + interval + R"("})");
    return DaemonOptions::acknowledgedOnly(
        dir, "[batch]\nmax_delay = 20ms\n[pipeline]\nexporters = " + dir.file("exporters") +
                 // Batches in pieces of 7 rowids: the kill loops hit sinks in the middle of a batch.
                 "\n[testing]\nexport_piece_rows = 7\n");
}

std::map<int64_t, int> countBy(const std::vector<nlohmann::json>& records, const char* metaField)
{
    std::map<int64_t, int> n;
    for (const auto& r : records)
        ++n[r["meta"][metaField].get<int64_t>()];
    return n;
}

std::set<int64_t> column(const std::string& db, const std::string& sql)
{
    std::set<int64_t> out;
    for (const auto& row : queryRows(db, sql))
        out.insert(std::stoll(row.at(0)));
    return out;
}

// Every committed event, derived row, final window and data key is in the files exactly once.
void checkExactlyOnce(const std::string& db, const ExportedFiles& files)
{
    for (const std::string& p : files.problems)
        FAIL_CHECK(p);
    const auto events = countBy(recordsOf(files, "contract", "acme/checkout/1.0.0"), "seq");
    const auto derived = countBy(recordsOf(files, "output", "analytics"), "seq");
    const std::set<int64_t> dbEvents = column(db, "SELECT seq FROM events_acme_checkout_1_0_0");
    const std::set<int64_t> dbDerived = column(db, "SELECT seq FROM derived_analytics");
    REQUIRE(!dbEvents.empty());
    size_t repeated = 0, missing = 0, extra = 0;
    for (const auto& [seq, n] : events) {
        repeated += n > 1 ? 1 : 0;
        extra += dbEvents.count(seq) ? 0 : 1;
    }
    for (int64_t seq : dbEvents)
        missing += events.count(seq) ? 0 : 1;
    CHECK(repeated == 0);
    CHECK(missing == 0);
    CHECK(extra == 0);
    size_t derivedRepeated = 0, derivedMissing = 0;
    for (const auto& [seq, n] : derived)
        derivedRepeated += n > 1 ? 1 : 0;
    for (int64_t seq : dbDerived)
        derivedMissing += derived.count(seq) ? 0 : 1;
    CHECK(derivedRepeated == 0);
    CHECK(derivedMissing == 0);
    CHECK(derived.size() == dbDerived.size());
    // Windows: each final window (window start, group) once.
    std::map<std::string, int> windows;
    for (const auto& w : recordsOf(files, "aggregation", "revenue_by_country"))
        ++windows[std::to_string(w["window_start_ms"].get<int64_t>()) + "/" + w["country"].get<std::string>()];
    for (const auto& [w, n] : windows)
        CHECK(n == 1);
    CHECK(static_cast<int64_t>(windows.size()) == queryInt(db, "SELECT count(*) FROM revenue_by_country WHERE final = 1"));
    // Keys: each data key once, in the keyLink CSV.
    std::map<std::string, int> keys;
    for (const std::string& line : files.keyLines)
        ++keys[line.substr(1, 36)];
    for (const auto& [k, n] : keys)
        CHECK(n == 1);
    CHECK(static_cast<int64_t>(keys.size()) == queryInt(db, "SELECT count(*) FROM keys WHERE kind = 'data'"));
}

// A stop does not wait for the exporters to catch up (each makes durable what it holds and
// keeps its cursor; the rest goes out after the next start): a test that compares the files with
// the database waits until the exporter's cursor reached the last committed batch.
void waitForExport(const Daemon& daemon, const char* exporter)
{
    auto behind = [&] {
        const auto rows = queryRows(daemon.database(), std::string("SELECT (SELECT max(id) FROM batches) - batch_id "
                                                                   "FROM export_cursors WHERE exporter = '") +
                                                           exporter + "'");
        return rows.empty() || rows[0][0] == "NULL" ? int64_t{1} : std::stoll(rows[0][0]);
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (behind() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(behind() == 0);
}

void sendEvents(TrackedProducer& producer, uint64_t seed, size_t count)
{
    const auto lines = referenceEvents(seed, count);
    for (size_t i = 0; i < lines.size(); i += 50)
        REQUIRE(producer.send(lines, i, std::min(lines.size(), i + 50)));
    REQUIRE(producer.flush());
}

}  // namespace

TEST_CASE("the file exporter writes every committed row once, as stored, and leaves no temporary file",
          "[integration][export]")
{
    TempDir dir("sluice-export-files");
    Daemon daemon(dir, exportingDaemon(dir, "300ms", "zstd"));
    REQUIRE(daemon.start());
    TrackedProducer::Options o;
    o.endpoint = daemon.routerEndpoint();
    o.producerId = "files";
    TrackedProducer producer(o);
    sendEvents(producer, 7, 3000);
    // Files appear while the daemon runs (the interval closes them), before any stop.
    const std::string exportDir = daemon.stateDir() + "/export/lake";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (readExport(exportDir).dataFiles.empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(!readExport(exportDir).dataFiles.empty());
    waitForExport(daemon, "lake");
    REQUIRE(daemon.stop(SIGTERM) == 0);

    const ExportedFiles files = readExport(exportDir);
    CHECK(files.hidden.empty());
    checkExactlyOnce(daemon.database(), files);
    // Events as stored: PII still the stored ciphertext, the rest typed.
    const auto events = recordsOf(files, "contract", "acme/checkout/1.0.0");
    REQUIRE(!events.empty());
    const auto& e = events.front();
    const auto row = queryRows(daemon.database(), "SELECT customer_id, country, key_link FROM events_acme_checkout_1_0_0 "
                                                  "WHERE seq = " + std::to_string(e["meta"]["seq"].get<int64_t>()));
    REQUIRE(row.size() == 1);
    if (e.contains("customer_id"))
        CHECK(e["customer_id"] == row[0][0]);
    CHECK(e["country"] == row[0][1]);
    CHECK(e["meta"]["key_link"] == row[0][2]);
    CHECK(e["total"].is_number());
    // Derived rows as the output's view shows them: the values the derived table keeps (fields
    // in clear, masks) and those read from the event row (the rest).
    const auto derived = recordsOf(files, "output", "analytics");
    REQUIRE(!derived.empty());
    std::map<std::string, std::vector<std::string>> viewRows;
    for (auto& r : queryRows(daemon.database(), "SELECT seq, event_seq, batch_id, event_id, event_time_ms, key_link, "
                                                "session_id, customer_id, email, ip, country, device FROM analytics"))
        viewRows[r[0]] = r;
    const char* const columns[] = {"seq", "event_seq", "batch_id", "event_id", "event_time", "key_link",
                                   "session_id", "customer_id", "email", "ip", "country", "device"};
    for (const auto& d : derived) {
        const std::string seq = std::to_string(d["meta"]["seq"].get<int64_t>());
        INFO("derived row " << seq);
        REQUIRE(viewRows.count(seq));
        const auto& row = viewRows[seq];
        for (size_t c = 0; c < std::size(columns); ++c) {
            INFO(columns[c]);
            const nlohmann::json& part = c < 6 ? d["meta"] : d;
            const nlohmann::json value = part.contains(columns[c]) ? part[columns[c]] : nlohmann::json();
            const std::string text = value.is_null() ? "NULL" : value.is_string() ? value.get<std::string>() : value.dump();
            CHECK(text == row[c]);
        }
    }
    // The file names carry the batch range; the data file's batches follow each other.
    uint64_t next = 1;
    for (const std::string& name : files.dataFiles) {
        const auto first = std::stoull(name.substr(name.size() - 10 - 25, 12));
        const auto last = std::stoull(name.substr(name.size() - 10 - 12, 12));
        CHECK(first >= next);
        CHECK(last >= first);
        next = last + 1;
    }
    // The cursor is saved with the last batch.
    CHECK(queryInt(daemon.database(), "SELECT batch_id FROM export_cursors WHERE exporter = 'lake'") ==
          queryInt(daemon.database(), "SELECT max(id) FROM batches"));
}

TEST_CASE("kill -9 while exporting: the union of the files is every committed row exactly once",
          "[integration][export]")
{
    const size_t kills = fromEnv("SLUICE_EXPORT_KILLS", 6);
    const size_t total = fromEnv("SLUICE_EXPORT_EVENTS", 12'000);
    TempDir dir("sluice-export-kill");
    Daemon daemon(dir, exportingDaemon(dir, "150ms", "zstd"));
    REQUIRE(daemon.start());
    const std::string exportDir = daemon.stateDir() + "/export/lake";

    TrackedProducer::Options o;
    o.endpoint = daemon.routerEndpoint();
    o.producerId = "kill";
    o.window = 6;
    TrackedProducer producer(o);
    std::atomic<bool> done{false};
    std::thread sender([&] {
        const auto lines = referenceEvents(11, total);
        for (size_t i = 0; i < lines.size() && !done; i += 25)
            if (!producer.send(lines, i, std::min(lines.size(), i + 25)))
                break;
        producer.flush();
        done = true;
    });
    // A downstream reader that keeps reading every visible file: none may ever be partial.
    std::atomic<bool> stopReader{false};
    std::vector<std::string> readerProblems;
    std::thread reader([&] {
        while (!stopReader) {
            for (const std::string& p : readExport(exportDir).problems)
                if (readerProblems.size() < 20)
                    readerProblems.push_back(p);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    std::mt19937 rng(std::random_device{}());
    size_t killed = 0;
    while (killed < kills && !done) {
        std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 400));
        daemon.kill9();
        ++killed;
        REQUIRE(daemon.start());
    }
    sender.join();
    waitForExport(daemon, "lake");
    REQUIRE(daemon.stop(SIGTERM) == 0);
    stopReader = true;
    reader.join();
    for (const std::string& p : readerProblems)
        FAIL_CHECK("a reader saw a partial file: " << p);
    for (const std::string& p : producer.problems())
        FAIL_CHECK(p);
    INFO(killed << " kills");
    CHECK(killed >= std::min<size_t>(kills, 2));
    const ExportedFiles files = readExport(exportDir);
    CHECK(files.hidden.empty());
    checkExactlyOnce(daemon.database(), files);
    CHECK(queryInt(daemon.database(), "SELECT count(*) FROM events_acme_checkout_1_0_0") ==
          static_cast<int64_t>(producer.ackedEventIds().size()));
}

TEST_CASE("forgetting a subject while exporting: the WAL is truncated and the forget log names the key links",
          "[integration][export]")
{
    TempDir dir("sluice-export-forget");
    Daemon daemon(dir, exportingDaemon(dir, "200ms", "none"));
    REQUIRE(daemon.start());
    const std::string exportDir = daemon.stateDir() + "/export/lake";
    TrackedProducer::Options o;
    o.endpoint = daemon.routerEndpoint();
    o.producerId = "forget";
    TrackedProducer producer(o);
    sendEvents(producer, 3, 2000);

    // Keep committing while we forget, and measure the WAL as we go.
    std::atomic<bool> done{false};
    std::atomic<uint64_t> maxWal{0};
    std::thread more([&] {
        TrackedProducer::Options o2 = o;
        o2.producerId = "forget-more";
        TrackedProducer p2(o2);
        const auto lines = referenceEvents(4, 4000);
        for (size_t i = 0; i < lines.size() && !done; i += 50)
            p2.send(lines, i, std::min(lines.size(), i + 50));
        p2.flush();
    });
    std::thread wal([&] {
        while (!done) {
            std::error_code ec;
            const auto size = std::filesystem::file_size(daemon.database() + "-wal", ec);
            if (!ec && size > maxWal)
                maxWal = size;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    });
    // The customer of the first event sent: a subject the database holds.
    const std::string subject = nlohmann::json::parse(referenceEvents(3, 1).front())["customer_id"];
    std::istringstream in;
    std::ostringstream out, err;
    const int code = cli::run({"forget", "--config", daemon.configPath(), "--subject", subject}, {in, out, err});
    INFO(out.str() << err.str());
    std::string links;
    for (const auto& row : queryRows(daemon.database(), "SELECT key_links FROM shred_log"))
        links += row[0];
    more.join();
    done = true;
    wal.join();
    REQUIRE(daemon.stop(SIGTERM) == 0);
    std::printf("file exporter: largest WAL while exporting and forgetting: %.1f MiB\n",
                static_cast<double>(maxWal.load()) / 1048576.0);
    CHECK(code == 0);  // 75 would mean the WAL could not be truncated (a reader held it back)
    CHECK(!links.empty());
    {
        const ExportedFiles files = readExport(exportDir);
        std::set<std::string> forgotten;
        for (const auto& f : files.forgets) {
            CHECK(f["cause"].get<std::string>().find("forget") != std::string::npos);
            CHECK(f.contains("at"));
            forgotten.insert(f["key_link"].get<std::string>());
        }
        std::istringstream l(links);
        std::string link;
        while (std::getline(l, link))
            if (!link.empty())
                CHECK(forgotten.count(link) == 1);
        CHECK(!files.forgetFiles.empty());
        CHECK(!forgotten.empty());
    }
}

TEST_CASE("the file exporter exports an aggregation's windows when they become final, and only then",
          "[integration][export]")
{
    TempDir dir("sluice-export-windows");
    Daemon daemon(dir, exportingDaemon(dir, "200ms", "none"));
    REQUIRE(daemon.start());
    TrackedProducer::Options o;
    o.endpoint = daemon.routerEndpoint();
    o.producerId = "windows";
    TrackedProducer producer(o);
    // revenue_by_country: 1-minute windows, 30 s allowed lateness, groups of at least 5 customers.
    // Windows at minutes 0 and 1 (NL and DE, 6 customers each: none final yet, the watermark
    // is 30 s behind the latest event), then events at minute 10 that move the watermark past
    // both; minute 10's window stays open.
    const int64_t t0 = 1'763'712'000'000;  // a whole minute
    std::vector<std::string> lines;
    auto event = [&](int64_t t, const std::string& country, int customer) {
        const std::string id = "w-" + std::to_string(lines.size());
        lines.push_back(R"({"meta":{"contract":"acme/checkout/1.0.0","consent":[0,1,2],"event_id":")" + id +
                        R"(","event_time":)" + std::to_string(t) + R"(},"session_id":"s-)" + std::to_string(customer) +
                        R"(","customer_id":"c-)" + std::to_string(customer) + R"(","country":")" + country +
                        R"(","total":2.5,"items":1})");
    };
    for (int minute = 0; minute < 2; ++minute)
        for (int c = 0; c < 6; ++c) {
            event(t0 + minute * 60'000 + c * 1000, "NL", c);
            event(t0 + minute * 60'000 + c * 1000 + 500, "DE", 100 + c);
        }
    REQUIRE(producer.send(lines, 0, lines.size()));
    REQUIRE(producer.flush());
    const std::string exportDir = daemon.stateDir() + "/export/lake";
    // Nothing final yet: the files (once the events are in) hold no window.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (recordsOf(readExport(exportDir), "contract", "acme/checkout/1.0.0").size() < lines.size() &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(recordsOf(readExport(exportDir), "contract", "acme/checkout/1.0.0").size() == lines.size());
    CHECK(recordsOf(readExport(exportDir), "aggregation", "revenue_by_country").empty());
    CHECK(queryInt(daemon.database(), "SELECT count(*) FROM revenue_by_country WHERE final = 1") == 0);

    const size_t before = lines.size();
    for (int c = 0; c < 6; ++c)
        event(t0 + 10 * 60'000 + c, "NL", c);
    REQUIRE(producer.send(lines, before, lines.size()));
    REQUIRE(producer.flush());
    REQUIRE(daemon.stop(SIGTERM) == 0);

    const std::string db = daemon.database();
    const ExportedFiles files = readExport(exportDir);
    for (const std::string& p : files.problems)
        FAIL_CHECK(p);
    std::map<std::string, nlohmann::json> exported;
    for (const auto& w : recordsOf(files, "aggregation", "revenue_by_country")) {
        const std::string k = std::to_string(w["window_start_ms"].get<int64_t>()) + "/" + w["country"].get<std::string>();
        CHECK(exported.count(k) == 0);
        CHECK(w["final"] == 1);
        exported[k] = w;
    }
    // Exactly the view's final windows (2 minutes x 2 countries), with the view's figures.
    const auto finals = queryRows(db, "SELECT window_start_ms, country, count, sum_total FROM revenue_by_country "
                                      "WHERE final = 1 ORDER BY window_start_ms, country");
    CHECK(finals.size() == 4);
    CHECK(exported.size() == finals.size());
    for (const auto& row : finals) {
        const auto it = exported.find(row[0] + "/" + row[1]);
        REQUIRE(it != exported.end());
        CHECK(std::to_string(it->second["count"].get<int64_t>()) == row[2]);
        CHECK(it->second["sum_total"].get<double>() == Approx(std::stod(row[3])));
    }
    // Minute 10's window is in the database, open, and not in the files.
    CHECK(queryInt(db, "SELECT count(*) FROM agg_revenue_by_country WHERE final = 0") >= 1);
    CHECK(exported.count(std::to_string(t0 + 10 * 60'000) + "/NL") == 0);
}

TEST_CASE("an exporter catching up on batches it reads in pieces still closes its files between batches",
          "[integration][export]")
{
    // A backlog committed before the exporter exists: when it starts, every batch's successor is
    // already there, and each batch is read in pieces (export_piece_rows = 7). A chunk that ends
    // a batch begun in an earlier chunk must not run on into the next batch's first piece, or the
    // exporter is always inside a batch at its chunk ends: the file never closes (one file for
    // the whole backlog, whatever `batches` says) and shredding waits for it to catch up.
    TempDir dir("sluice-export-backlog");
    Daemon daemon(dir, exportingDaemon(dir, "1h", "none"));
    const std::string spec = dir.file("exporters/lake.json");
    std::filesystem::remove(spec);
    REQUIRE(daemon.start());
    TrackedProducer::Options o;
    o.endpoint = daemon.routerEndpoint();
    o.producerId = "backlog";
    TrackedProducer producer(o);
    sendEvents(producer, 5, 3000);
    REQUIRE(daemon.stop(SIGTERM) == 0);
    const int64_t batches = queryInt(daemon.database(), "SELECT max(id) FROM batches");
    REQUIRE(batches >= 6);

    writeText(spec, R"({"name": "lake", "type": "file", "contracts": ["acme/checkout/1.0.0"], "outputs": ["analytics"],
                        "directory": "export/lake", "interval": "1h", "batches": 2})");
    REQUIRE(daemon.start());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    auto cursor = [&] {
        auto rows = queryRows(daemon.database(), "SELECT batch_id FROM export_cursors WHERE exporter = 'lake'");
        return rows.empty() ? int64_t{0} : std::stoll(rows[0][0]);
    };
    while (cursor() < batches && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(cursor() >= batches);
    REQUIRE(daemon.stop(SIGTERM) == 0);

    const ExportedFiles files = readExport(daemon.stateDir() + "/export/lake");
    INFO(files.dataFiles.size() << " files for " << batches << " batches");
    CHECK(files.dataFiles.size() >= static_cast<size_t>(batches / 2));
    for (const std::string& name : files.dataFiles) {
        const auto first = std::stoull(name.substr(name.size() - 6 - 25, 12));
        const auto last = std::stoull(name.substr(name.size() - 6 - 12, 12));
        INFO(name);
        CHECK(last - first + 1 <= 2);
    }
}
