// sluicectl against a real sluiced (started from the build tree in a temp directory): send and
// its report, dead letters, the round trip events -> keys export (both formats) -> decrypt,
// mask with an output's derived seed, forget with a byte scan of the database files, status
// from the metrics and from the database, and the master-key refusals.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cli_support.h"
#include "core/encoding.h"
#include "harness.h"
#include "store/db.h"
#include "workload/generator.h"

using namespace sluice;
using namespace sluice::testing;
using Json = nlohmann::json;

namespace {

const char* const kPeopleContract = R"({
  "ref": "test/people/1.0.0",
  "key_field": "visit",
  "data_subject_field": "person",
  "fields": {
    "visit":  {"type": "string", "required": true, "pii": 0},
    "person": {"type": "string", "pii": 1},
    "emails": {"type": "array", "items": "string", "pii": 2},
    "note":   {"type": "string"},
    "score":  {"type": "number"},
    "visits": {"type": "integer"},
    "vip":    {"type": "boolean"},
    "tags":   {"type": "array", "items": "string"}
  }
})";

const char* const kPeoplePipeline = R"({
  "contract": "test/people/1.0.0",
  "outputs": [
    {"name": "people_marketing", "type": "granular", "purposes": [1],
     "mask": {"fields": ["person"], "algorithm": "murmur3"}}
  ]
})";

constexpr const char* kPeopleTable = "events_test_people_1_0_0";

// A daemon that died fails the test within this, instead of a send waiting for it for ever.
constexpr const char* kGiveUp = "20s";

// A daemon running the people contract, with events of three data subjects sent through
// `sluicectl send`. Every PII value is a unique canary.
struct PeopleFixture {
    TempDir dir{"sluicectl-it"};
    std::unique_ptr<Daemon> daemon;
    std::map<std::string, Json> sent;                        // event_id -> event
    std::map<std::string, std::vector<std::string>> byPerson;  // person name -> event ids
    std::map<std::string, std::string> personValue;          // person name -> its canary value

    PeopleFixture()
    {
        std::filesystem::create_directories(dir.file("contracts"));
        std::filesystem::create_directories(dir.file("pipelines"));
        writeFile(dir.file("contracts/people.json"), kPeopleContract, 0644);
        writeFile(dir.file("pipelines/people.json"), kPeoplePipeline, 0644);
        DaemonOptions o;
        o.contracts = dir.file("contracts");
        o.pipelines = dir.file("pipelines");
        o.extraConfig = "[batch]\nmax_delay = 20ms\n";
        daemon = std::make_unique<Daemon>(dir, o);
        REQUIRE(daemon->start());
        send(makeEvents(1));
    }

    std::string config() const { return daemon->configPath(); }

    std::vector<Json> makeEvents(int round)
    {
        const std::vector<std::vector<int>> consents = {{0, 1, 2}, {0, 1}, {0}, {}, {1}};
        std::vector<Json> events;
        int n = 0;
        for (const std::string person : {"alice", "bob", "carol"}) {
            const std::string value = "canary-person-" + person + "-7f3e";
            personValue[person] = value;
            for (int v = 0; v < 5; ++v, ++n) {
                Json e;
                const std::string id = "r" + std::to_string(round) + "-" + person + "-" + std::to_string(v);
                e["meta"] = {{"contract", "test/people/1.0.0"}, {"consent", consents[static_cast<size_t>(n) % 5]},
                             {"event_id", id}};
                e["visit"] = "canary-visit-r" + std::to_string(round) + "-" + person + "-" + std::to_string(v);
                e["person"] = value;
                if (v % 2 == 0)
                    e["emails"] = {person + "." + std::to_string(v) + "@canary.example", "second-" + person + "@x.example"};
                if (v != 3) {
                    e["note"] = "note \"" + std::to_string(v) + "\" é";
                    e["score"] = 0.5 + v;
                    e["visits"] = v * 10;
                    e["vip"] = v % 2 == 1;
                    e["tags"] = {"t" + std::to_string(v), "common"};
                }
                sent[id] = e;
                byPerson[person].push_back(id);
                events.push_back(e);
            }
        }
        return events;
    }

    void send(const std::vector<Json>& events)
    {
        std::string input;
        for (const Json& e : events)
            input += e.dump() + "\n";
        auto r = sluicectl({"send", "--endpoint", daemon->routerEndpoint(), "--events-per-message", "4", "--json",
                            "--fail-on-reject", "--give-up", kGiveUp},
                           input);
        INFO(r.err);
        REQUIRE(r.code == 0);
        const Json report = Json::parse(r.out);
        REQUIRE(report["accepted"] == events.size());
    }

    // Decrypts `sluicectl decrypt --contract` output into event_id -> line.
    std::map<std::string, Json> decryptAll(int expectCode, const std::vector<std::string>& extra = {})
    {
        std::vector<std::string> args = {"decrypt", "--config", config(), "--contract", "test/people/1.0.0"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto r = sluicectl(args);
        INFO(r.err);
        CHECK(r.code == expectCode);
        std::map<std::string, Json> out;
        for (const std::string& line : lines(r.out)) {
            Json j = Json::parse(line);
            out[j.at("meta").at("event_id").get<std::string>()] = j;
        }
        return out;
    }
};

std::string readBytes(const std::string& path) { return readFile(path); }

store::Db openDb(const std::string& path)
{
    store::Db::Options o;
    o.readOnly = true;
    auto db = store::Db::open(path, o);
    REQUIRE(db);
    return std::move(*db);
}

// Every key link and its decoded 64-byte key in a JSON-lines export.
std::map<std::string, std::string> exportedKeys(const std::string& text)
{
    std::map<std::string, std::string> keys;
    for (const std::string& line : lines(text)) {
        const Json j = Json::parse(line);
        auto proto = fromBase64(j["keyset"]["key"][0]["keyData"]["value"].get<std::string>());
        REQUIRE(proto);
        REQUIRE(proto->size() == 66);
        keys[j["keyLink"].get<std::string>()] = proto->substr(2);
    }
    return keys;
}

void checkDecryptedEvent(const Json& got, const Json& sent)
{
    INFO(got.dump());
    CHECK_FALSE(got.contains("_errors"));
    CHECK(got.at("meta").at("contract") == sent.at("meta").at("contract"));
    CHECK(got.at("meta").at("consent") == sent.at("meta").at("consent"));
    CHECK(got.at("meta").at("key_link").is_string());
    for (const auto& [name, value] : sent.items()) {
        if (name == "meta")
            continue;
        INFO(name);
        REQUIRE(got.contains(name));
        CHECK(got.at(name) == value);
    }
    for (const auto& [name, value] : got.items())
        CHECK((name == "meta" || sent.contains(name)));  // absent fields stay absent
}

}  // namespace

TEST_CASE("round trip: events -> keys export (tink and csv) -> decrypt gives back every plaintext", "[cli][it]")
{
    PeopleFixture f;
    const std::string jsonl = f.dir.file("keys.jsonl");
    const std::string csv = f.dir.file("keys.csv");
    auto tink = sluicectl({"keys", "export", "--config", f.config(), "--output", jsonl});
    REQUIRE(tink.code == 0);
    CHECK(tink.err == "exported 15 key(s) as tink to " + jsonl + "\n");
    REQUIRE(sluicectl({"keys", "export", "--config", f.config(), "--format", "csv", "-o", csv, "-q"}).code == 0);
    for (const std::string& path : {jsonl, csv}) {
        struct stat st{};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
    }
    CHECK(exportedKeys(readFile(jsonl)).size() == 15);
    CHECK(readFile(csv).rfind("keyLink,encryptionKey,policyId,expiresAt\n\"", 0) == 0);
    CHECK(sluicectl({"keys", "export", "--config", f.config(), "--output", csv}).code == sluice::kExitIoErr);  // exists
    CHECK(sluicectl({"keys", "export", "--config", f.config(), "--output", csv, "--force", "-q"}).code == 0);

    // Every stored ciphertext (strings and array elements) through both exports.
    std::string input, expected;
    const auto rows = queryRows(f.daemon->database(),
                                std::string("SELECT event_id, visit, person, emails FROM ") + kPeopleTable);
    REQUIRE(rows.size() == 15);
    for (const auto& row : rows) {
        const Json& e = f.sent.at(row[0]);
        input += row[1] + "\n" + row[2] + "\n";
        expected += e["visit"].get<std::string>() + "\n" + e["person"].get<std::string>() + "\n";
        CHECK(row[1] != e["visit"].get<std::string>());
        if (row[3] != "NULL") {
            const Json emails = Json::parse(row[3]);
            REQUIRE(emails.size() == 2);
            for (size_t i = 0; i < 2; ++i) {
                input += emails[i].get<std::string>() + "\n";
                expected += e["emails"][i].get<std::string>() + "\n";
            }
        }
    }
    for (const std::string& keys : {jsonl, csv}) {
        auto r = sluicectl({"decrypt", "--keys", keys}, input);
        INFO(keys << ": " << r.err);
        CHECK(r.code == 0);
        CHECK(r.out == expected);
    }
    // Without an export: the database's keys, found by the key id in each value.
    auto viaDb = sluicectl({"decrypt", "--config", f.config()}, input);
    CHECK(viaDb.code == 0);
    CHECK(viaDb.out == expected);

    // Whole events from the database: every field as sent, arrays element by element.
    auto events = f.decryptAll(0);
    REQUIRE(events.size() == 15);
    for (const auto& [id, got] : events)
        checkDecryptedEvent(got, f.sent.at(id));
    // The same by table and view name, and with selections.
    CHECK(sluicectl({"decrypt", "--config", f.config(), "--view", "test_people_1_0_0"}).out ==
          sluicectl({"decrypt", "--config", f.config(), "--table", kPeopleTable}).out);
    CHECK(f.decryptAll(0, {"--limit", "4"}).size() == 4);
    writeFile(f.dir.file("bob.txt"), f.personValue["bob"] + "\n");
    auto bob = f.decryptAll(0, {"--subject-file", f.dir.file("bob.txt")});
    CHECK(bob.size() == 5);
    for (const auto& [id, got] : bob)
        CHECK(got.at("person") == f.personValue["bob"]);
    auto output = sluicectl({"decrypt", "--config", f.config(), "--view", "people_marketing"});
    CHECK(output.code == sluice::kExitUsage);
    CHECK(output.err.find("--contract test/people/1.0.0") != std::string::npos);
    CHECK(sluicectl({"decrypt", "--config", f.config(), "--contract", "no/such/1.0.0"}).code == sluice::kExitDataErr);

    // keys export --subject selects exactly that subject's keys.
    auto aliceKeys = sluicectl({"keys", "export", "--config", f.config(), "--subject", f.personValue["alice"]});
    REQUIRE(aliceKeys.code == 0);
    const auto aliceLinks = exportedKeys(aliceKeys.out);
    CHECK(aliceLinks.size() == 5);
    for (const auto& [id, got] : events) {
        const bool isAlice = got.at("person") == f.personValue["alice"];
        CHECK(aliceLinks.count(got.at("meta").at("key_link").get<std::string>()) == (isAlice ? 1u : 0u));
    }
    auto none = sluicectl({"keys", "export", "--config", f.config(), "--from", "2000-01-01", "--to", "2000-01-02"});
    CHECK(none.code == 0);
    CHECK(none.out.empty());
    CHECK(none.err.find("no key matched") != std::string::npos);
    CHECK(sluicectl({"keys", "export", "--config", f.config(), "--from", "2000-01-01", "-q"}).out == readFile(jsonl));
}

TEST_CASE("mask --output uses the output's seed as the daemon does (derived from the master key)", "[cli][it]")
{
    PeopleFixture f;
    const auto rows = queryRows(f.daemon->database(), "SELECT event_id, person FROM people_marketing");
    REQUIRE_FALSE(rows.empty());
    for (const auto& row : rows) {
        const std::string value = f.sent.at(row[0])["person"].get<std::string>();
        auto r = sluicectl({"mask", "--config", f.config(), "--output", "people_marketing", value});
        INFO(r.err);
        CHECK(r.code == 0);
        CHECK(r.out == row[1] + "\n");
    }
    CHECK(sluicectl({"mask", "--config", f.config(), "--output", "people_marketing", "--algorithm", "hmac-sha256", "x"})
              .code == sluice::kExitUsage);
}

TEST_CASE("forget a subject: keys and derived rows gone, no copy in the files, others still decrypt", "[cli][it]")
{
    PeopleFixture f;
    const std::string db = f.daemon->database();
    writeFile(f.dir.file("alice.txt"), f.personValue["alice"] + "\n");
    auto exported = sluicectl({"keys", "export", "--config", f.config(), "--subject-file", f.dir.file("alice.txt")});
    REQUIRE(exported.code == 0);
    const auto aliceKeys = exportedKeys(exported.out);
    REQUIRE(aliceKeys.size() == 5);
    std::string linkList;
    for (const auto& [link, key] : aliceKeys)
        linkList += std::string(linkList.empty() ? "" : ",") + "'" + link + "'";
    std::vector<std::string> wrapped;
    {
        store::Db conn = openDb(db);
        auto stmt = conn.prepare("SELECT wrapped FROM keys WHERE key_link IN (" + linkList + ")");
        REQUIRE(stmt);
        while (*stmt->step())
            wrapped.emplace_back(stmt->columnBlob(0));
    }
    REQUIRE(wrapped.size() == 5);
    {
        // The scan below must be able to see a wrapped key: before forgetting, it does.
        const std::string files = readBytes(db) + readBytes(db + "-wal");
        for (const std::string& w : wrapped)
            REQUIRE(files.find(w) != std::string::npos);
    }
    const int64_t derived = queryInt(db, "SELECT count(*) FROM derived_people_marketing WHERE key_link IN (" + linkList + ")");
    REQUIRE(derived > 0);

    auto dry = sluicectl({"forget", "--config", f.config(), "--subject-file", f.dir.file("alice.txt"), "--dry-run"});
    CHECK(dry.code == 0);
    CHECK(dry.out.find("would forget 5 key(s): " + std::to_string(derived) + " derived row(s)") != std::string::npos);
    CHECK(queryInt(db, "SELECT count(*) FROM keys WHERE key_link IN (" + linkList + ")") == 5);

    // While the daemon runs.
    auto forgot = sluicectl({"forget", "--config", f.config(), "--subject-file", f.dir.file("alice.txt")});
    INFO(forgot.err);
    REQUIRE(forgot.code == 0);
    CHECK(forgot.out.find("forgot 5 key(s): " + std::to_string(derived) + " derived row(s) and 0 dead-letter") !=
          std::string::npos);
    for (const auto& [link, key] : aliceKeys)
        CHECK(forgot.out.find(link) != std::string::npos);
    CHECK(forgot.out.find("WAL checkpointed and truncated") != std::string::npos);
    CHECK(queryInt(db, "SELECT count(*) FROM keys WHERE key_link IN (" + linkList + ")") == 0);
    CHECK(queryInt(db, "SELECT count(*) FROM key_subjects WHERE key_link IN (" + linkList + ")") == 0);
    CHECK(queryInt(db, "SELECT count(*) FROM derived_people_marketing WHERE key_link IN (" + linkList + ")") == 0);
    CHECK(queryInt(db, std::string("SELECT count(*) FROM ") + kPeopleTable + " WHERE key_link IN (" + linkList + ")") == 5);

    // Issue 11: asked by subject or by key link, a forgotten subject reads alike: exit 65 and why.
    auto bySubject = sluicectl({"decrypt", "--config", f.config(), "--contract", "test/people/1.0.0", "--subject-file",
                                f.dir.file("alice.txt")});
    CHECK(bySubject.code == sluice::kExitDataErr);
    CHECK(bySubject.out.empty());
    CHECK(bySubject.err.find("no key is linked to that subject: it was forgotten") != std::string::npos);
    auto byLink = sluicectl({"decrypt", "--config", f.config(), "--contract", "test/people/1.0.0", "--key-link",
                             aliceKeys.begin()->first});
    CHECK(byLink.code == sluice::kExitDataErr);
    CHECK(byLink.err.find("because their key was shredded") != std::string::npos);
    // Forgetting again deletes nothing, and says so.
    auto repeat = sluicectl({"forget", "--config", f.config(), "--subject-file", f.dir.file("alice.txt")});
    CHECK(repeat.code == 0);
    CHECK(repeat.out.find("no key is linked to that subject") != std::string::npos);
    CHECK(repeat.out.find("nothing was deleted now") != std::string::npos);
    CHECK(repeat.out.find("no copy of a deleted key remains") == std::string::npos);

    // The daemon keeps working; a new event of the subject gets a new key.
    f.send(f.makeEvents(2));
    REQUIRE(f.daemon->stop() == 0);

    for (const std::string suffix : {"", "-wal", "-shm"}) {
        const std::string bytes = readBytes(db + suffix);
        INFO("sluice.db" << suffix << " (" << bytes.size() << " bytes)");
        for (const std::string& w : wrapped)
            CHECK(bytes.find(w) == std::string::npos);
        for (const auto& [link, key] : aliceKeys)
            CHECK(bytes.find(key) == std::string::npos);
    }

    auto events = f.decryptAll(sluice::kExitDataErr);
    REQUIRE(events.size() == 30);
    size_t shredded = 0;
    for (const auto& [id, got] : events) {
        const bool oldAlice = id.rfind("r1-alice-", 0) == 0;
        if (!oldAlice) {
            checkDecryptedEvent(got, f.sent.at(id));
            continue;
        }
        ++shredded;
        INFO(got.dump());
        CHECK(got.at("visit").is_null());
        CHECK(got.at("person").is_null());
        REQUIRE(got.contains("_errors"));
        for (const Json& e : got.at("_errors"))
            CHECK(e.at("error").get<std::string>().find("was shredded at") != std::string::npos);
        CHECK(got.value("note", Json()) == f.sent.at(id).value("note", Json()));  // clear fields are untouched
    }
    CHECK(shredded == 5);

    auto again = sluicectl({"forget", "--config", f.config(), "--subject", f.personValue["bob"], "--dry-run"});
    CHECK(again.code == 0);
    auto twice = sluicectl({"forget", "--config", f.config(), "--key-link", aliceKeys.begin()->first, "--json"});
    CHECK(twice.code == 0);
    const Json report = Json::parse(twice.out);
    CHECK(report["keys"] == 0);
    CHECK(report["wal_truncated"] == true);
    CHECK(report["notes"][0].get<std::string>().find("already shredded") != std::string::npos);
    CHECK(sluicectl({"forget", "--config", f.config(), "--key-link", "00000000-0000-4000-8000-000000000000"}).code ==
          sluice::kExitDataErr);
}

TEST_CASE("send reports what the daemon did; duplicates, dead letters, fire-and-forget", "[cli][it]")
{
    TempDir dir("sluicectl-send");
    DaemonOptions o;
    o.extraConfig = "[batch]\nmax_delay = 20ms\n";
    Daemon daemon(dir, o);
    REQUIRE(daemon.start());
    const std::string db = daemon.database();

    // What the daemon must reject: the generator says so, per reason.
    workload::Options wo;
    wo.seed = 7;
    wo.invalidFraction = 0.05;
    workload::Generator generator(wo);
    std::map<std::string, uint64_t> expectedByReason;
    std::map<std::string, std::multiset<std::string>> invalidLines;
    uint64_t expectedRejected = 0;
    for (int i = 0; i < 1000; ++i) {
        std::string line;
        if (auto reason = generator.next(line)) {
            ++expectedRejected;
            ++expectedByReason[std::string(reasonCode(*reason))];
            invalidLines[std::string(reasonCode(*reason))].insert(line);
        }
    }
    REQUIRE(expectedRejected > 0);

    const std::vector<std::string> args = {"send", "--endpoint", daemon.routerEndpoint(), "--generate", "1000",
                                           "--invalid-fraction", "0.05", "--seed", "7", "--producer-id", "it-producer",
                                           "--json", "--give-up", kGiveUp};
    auto first = sluicectl(args);
    INFO(first.err);
    REQUIRE(first.code == 0);
    const Json r1 = Json::parse(first.out);
    CHECK(r1["mode"] == "acknowledged");
    CHECK(r1["events"] == 1000);
    CHECK(r1["requests"] == 10);
    CHECK(r1["acknowledged"] == 10);
    CHECK(r1["rejected"] == expectedRejected);
    CHECK(r1["accepted"] == 1000 - expectedRejected);
    CHECK(r1["duplicates"] == 0);
    CHECK(r1["unanswered"] == 0);
    for (const auto& [reason, n] : expectedByReason)
        CHECK(r1["rejected_by_reason"][reason] == n);
    CHECK(queryInt(db, "SELECT count(*) FROM events_acme_checkout_1_0_0") == static_cast<int64_t>(1000 - expectedRejected));
    CHECK(queryInt(db, "SELECT count(*) FROM rejects") == static_cast<int64_t>(expectedRejected));

    // The same requests again: answered as duplicates, applied zero times.
    auto second = sluicectl(args);
    REQUIRE(second.code == 0);
    const Json r2 = Json::parse(second.out);
    // Issue 11: duplicates count events, as the daemon's counters do; nothing counts as accepted.
    CHECK(r2["duplicates"] == 1000);
    CHECK(r2["duplicate_requests"] == 10);
    CHECK(r2["accepted"] == 0);
    CHECK(r2["rejected"] == 0);
    CHECK(r2["unanswered"] == 0);
    CHECK(queryInt(db, "SELECT sum(duplicates) FROM batches") == 1000);
    CHECK(queryInt(db, "SELECT count(*) FROM events_acme_checkout_1_0_0") == static_cast<int64_t>(1000 - expectedRejected));

    // The human report and --fail-on-reject, from standard input.
    const std::string input = "{\"meta\":{\"contract\":\"acme/checkout/1.0.0\",\"consent\":[0]},\"session_id\":\"s\","
                              "\"country\":\"NL\",\"total\":1}\nnot json\r\n\n";
    auto text = sluicectl({"send", "--endpoint", daemon.routerEndpoint(), "--fail-on-reject", "--give-up", kGiveUp}, input);
    CHECK(text.code == sluice::kExitDataErr);
    CHECK(text.out.find("sent 2 event(s) in 1 request(s)") != std::string::npos);
    CHECK(text.out.find("events accepted 1, rejected 1") != std::string::npos);
    CHECK(text.out.find("rejected by reason: not_json 1") != std::string::npos);
    CHECK(text.out.find("unanswered: 0") != std::string::npos);

    // Dead letters: the inputs come back decrypted with their day key.
    auto dead = sluicectl({"decrypt", "--config", daemon.configPath(), "--dead-letters", "--reason", "wrong_type"});
    INFO(dead.err);
    CHECK(dead.code == 0);
    std::multiset<std::string> inputs;
    for (const std::string& line : lines(dead.out)) {
        const Json j = Json::parse(line);
        CHECK(j["reason"] == "wrong_type");
        CHECK(j["input_truncated"] == false);
        inputs.insert(j["input"].get<std::string>());
    }
    CHECK(inputs == invalidLines["wrong_type"]);
    auto all = sluicectl({"decrypt", "--config", daemon.configPath(), "--dead-letters"});
    CHECK(all.code == 0);
    CHECK(lines(all.out).size() == expectedRejected + 1);

    // Fire-and-forget: nothing comes back; the events arrive.
    const int64_t before = queryInt(db, "SELECT count(*) FROM events_acme_checkout_1_0_0");
    auto push = sluicectl({"send", "--fire-and-forget", "--endpoint", daemon.pullEndpoint(), "--generate", "50",
                           "--seed", "99"});
    CHECK(push.code == 0);
    CHECK(push.out.find("fire-and-forget") != std::string::npos);
    int64_t after = before;
    for (int i = 0; i < 250 && after < before + 50; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        after = queryInt(db, "SELECT count(*) FROM events_acme_checkout_1_0_0");
    }
    CHECK(after == before + 50);
}

TEST_CASE("status: from the metrics while running, from the database when down", "[cli][it]")
{
    TempDir dir("sluicectl-status");
    DaemonOptions o;
    o.extraConfig = "[batch]\nmax_delay = 20ms\n";
    Daemon daemon(dir, o);
    REQUIRE(daemon.start());
    REQUIRE(sluicectl({"send", "--endpoint", daemon.routerEndpoint(), "--generate", "300", "-q", "--give-up", kGiveUp})
                .code == 0);
    const std::string url = "http://" + daemon.metricsAddress() + "/metrics";

    auto up = sluicectl({"status", "--metrics", url});
    INFO(up.err);
    CHECK(up.code == 0);
    CHECK(up.out.find("is running") != std::string::npos);
    CHECK(up.out.find("300 received, 300 committed, 0 rejected, 0 duplicates") != std::string::npos);
    CHECK(up.out.find("commit (fsync) p50") != std::string::npos);

    REQUIRE(daemon.stop() == 0);
    auto down = sluicectl({"status", "--config", daemon.configPath(), "--metrics", url});
    CHECK(down.code == sluice::kExitUnavailable);
    CHECK(down.out.find("sluiced is not running") != std::string::npos);
    CHECK(down.out.find("From the database " + daemon.database()) != std::string::npos);
    CHECK(down.out.find("300 received, 300 committed, 0 rejected") != std::string::npos);

    // metrics.listen with port 0 cannot be guessed; the database summary still comes.
    auto ephemeral = sluicectl({"status", "--config", daemon.configPath()});
    CHECK(ephemeral.code == sluice::kExitUnavailable);
    CHECK(ephemeral.out.find("ephemeral port") != std::string::npos);
    CHECK(ephemeral.out.find("From the database") != std::string::npos);

    // Metrics off names no address: status says so instead of trying 127.0.0.1:9464.
    std::string config = readFile(daemon.configPath());
    const size_t at = config.find("[metrics]\nlisten = ");
    REQUIRE(at != std::string::npos);
    config.insert(at + 9, "\n# metrics off");
    config.replace(config.find("listen = ", at), 9, "listen = \n# was: ");
    const std::string offConfig = dir.file("metrics-off.conf");
    writeFile(offConfig, config, 0644);
    auto off = sluicectl({"status", "--config", offConfig});
    INFO(off.err);
    CHECK(off.code == sluice::kExitUnavailable);
    CHECK(off.out.find("has no metrics endpoint") != std::string::npos);
    CHECK(off.out.find("9464") == std::string::npos);
    CHECK(off.out.find("From the database") != std::string::npos);
}

TEST_CASE("a wrong or missing master key is refused clearly (exit 77)", "[cli][it]")
{
    TempDir dir("sluicectl-master");
    Daemon daemon(dir);
    REQUIRE(daemon.start());
    REQUIRE(sluicectl({"send", "--endpoint", daemon.routerEndpoint(), "--generate", "20", "-q", "--give-up", kGiveUp})
                .code == 0);
    REQUIRE(daemon.stop() == 0);
    const std::string cfg = daemon.configPath();
    REQUIRE(sluicectl({"keys", "export", "--config", cfg, "-q"}).code == 0);

    const std::string goodKey = dir.file("elsewhere.key");
    std::filesystem::copy_file(daemon.stateDir() + "/master.key", goodKey);
    writeFile(daemon.stateDir() + "/master.key", std::string(64, 'a') + "\n");
    for (std::vector<std::string> cmd : {std::vector<std::string>{"keys", "export"},
                                         {"decrypt", "--contract", "acme/checkout/1.0.0"},
                                         {"mask", "--output", "analytics", "x"},
                                         {"forget", "--subject", "cust-00001"}}) {
        cmd.push_back("--config");
        cmd.push_back(cfg);
        auto r = sluicectl(cmd);
        INFO(cmd[0]);
        CHECK(r.code == sluice::kExitNoPerm);
        CHECK(r.err.find("does not match the database") != std::string::npos);
        CHECK(r.out.empty());
    }
    std::filesystem::remove(daemon.stateDir() + "/master.key");
    auto missing = sluicectl({"keys", "export", "--config", cfg});
    CHECK(missing.code == sluice::kExitNoPerm);
    CHECK(missing.err.find("no master key") != std::string::npos);

    // Issue 11: every command that reads the configuration takes sluiced's --section.key=value.
    auto overridden = sluicectl({"keys", "export", "--config", cfg, "-q", "--privacy.master_key_file=" + goodKey});
    CHECK(overridden.code == 0);
    CHECK_FALSE(overridden.out.empty());
    auto spaced = sluicectl({"keys", "export", "-q", "--state-dir", daemon.stateDir(), "--privacy.master_key_file", goodKey});
    CHECK(spaced.code == 0);
    CHECK(spaced.out == overridden.out);
    auto decrypted = sluicectl({"decrypt", "--service.state_dir=" + daemon.stateDir(), "--privacy.master_key_file=" + goodKey,
                                "--contract", "acme/checkout/1.0.0", "--limit", "1"});
    INFO(decrypted.err);
    CHECK(decrypted.code == 0);
    CHECK(lines(decrypted.out).size() == 1);
    auto unknown = sluicectl({"keys", "export", "--config", cfg, "--privacy.no_such_setting=1"});
    CHECK(unknown.code == sluice::kExitUsage);
    CHECK(unknown.err.find("no_such_setting") != std::string::npos);
    CHECK(sluicectl({"mask", "--output", "analytics", "--privacy.master_key_file"}).code == sluice::kExitUsage);
    // Forgetting by key link needs no master key.
    const auto link = queryRows(daemon.database(), "SELECT key_link FROM keys WHERE kind = 'data' LIMIT 1").at(0).at(0);
    auto forget = sluicectl({"forget", "--config", cfg, "--key-link", link});
    CHECK(forget.code == 0);
    CHECK(forget.out.find("forgot 1 key(s)") != std::string::npos);
}
