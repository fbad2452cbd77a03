// sluicectl decrypt: Tink ciphertexts back to plaintext, from a key export or from the database.
#include <boost/program_options.hpp>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "transform/db_keys.h"
#include "config/config.h"
#include "config/pipeline_parts.h"
#include "core/encoding.h"
#include "core/row_json.h"
#include "core/time_format.h"
#include "privacy/key_ring.h"
#include "store/catalog.h"
#include "store/dead_letters.h"
#include "store/event_rows.h"
#include "store/key_table.h"

namespace sluice::cli {
namespace {

using Json = nlohmann::ordered_json;
using privacy::FileKeyRing;
using privacy::StoredKeyRing;

const Command kDecrypt = {
    "decrypt",
    "[options] [VALUE...]",
    "Decrypts Tink ciphertexts (Base64), or whole events from the database.",
    R"(Values (arguments, or one per line of standard input):
  --keys FILE     with a key export (sluicectl keys export, either format) or a keyset that Tink
                  or Tinkey wrote; the key id in each value picks the key.
  --config ...    without --keys: with the database's keys and the master key.
  Prints one plaintext per line. A value that does not decrypt prints an empty line, and the
  reason on standard error; --json prints {"input": N, "plaintext": ...} or {"input": N,
  "error": ...} instead (and "plaintext_base64" for bytes that are not UTF-8).

Events (with --config and the master key; JSON lines, every PII field decrypted, arrays element
by element):
  --contract REF | --table NAME | --view NAME   the contract's events (table or view name)
  --key-link L (repeatable), --subject VALUE / --subject-file FILE, --limit N
  A value whose key was shredded (sluicectl forget, retention) is printed as null, with an entry
  in the event's "_errors" list: {"field": "email", "error": "key ... was shredded at ..."}.
  A --subject with no key (forgotten, or never seen) has no events to print: it says so on
  standard error and exits 65, as a shredded key does.
  --dead-letters  rejected inputs (the capped copy, decrypted with its day key); --reason R
                  and --contract REF filter them.

Exit codes: 0 everything decrypted, 65 some value did not (shredded key, altered or foreign
value) or the --subject has no key, 77 master key missing or wrong, 69 no database.

Examples:
  sluicectl decrypt --keys keys.jsonl AXJmOD6IkOv787yGFRqgwGHJTUVzcdja
  sqlite3 sluice.db "select email from acme_checkout_1_0_0" | sluicectl decrypt --keys keys.csv
  sluicectl decrypt --config /etc/sluice/sluiced.conf --contract acme/checkout/1.0.0 --limit 10
  sluicectl decrypt --config /etc/sluice/sluiced.conf --dead-letters --reason wrong_type
)",
};

bool validUtf8(std::string_view s)
{
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size())
            return false;
        for (size_t k = 1; k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        // Overlong forms, surrogates and values past U+10FFFF.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

std::string dumpLine(const Json& j)
{
    return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

// Text plaintexts go in `name`; bytes that are not UTF-8 in `name`_base64.
void putPlaintext(Json& obj, const std::string& name, const std::string& plaintext)
{
    if (validUtf8(plaintext))
        obj[name] = plaintext;
    else
        obj[name + "_base64"] = toBase64(plaintext);
}

struct Tally {
    uint64_t rows = 0;
    uint64_t failedValues = 0;
    uint64_t failedRows = 0;
    uint64_t shredded = 0;
};

int finish(Io& io, const Tally& t, const char* what)
{
    io.out.flush();
    if (!io.out)
        throw Failure(kExitIoErr, "writing to standard output failed");
    if (t.failedValues == 0)
        return kExitOk;
    io.err << "sluicectl decrypt: " << t.failedValues << " value(s) in " << t.failedRows << " of " << t.rows << " "
           << what << " could not be decrypted";
    if (t.shredded)
        io.err << " (" << t.shredded << " because their key was shredded)";
    io.err << "\n";
    return kExitDataErr;
}

// ---- values ----

template <typename DecryptFn>
int decryptValues(const std::vector<std::string>& values, bool json, Io& io, DecryptFn&& decrypt)
{
    Tally tally;
    forEachValue(values, io, [&](std::string_view value) {
        ++tally.rows;
        Result<std::string> plain = decrypt(value);
        if (json) {
            Json j;
            j["input"] = tally.rows;
            if (plain)
                putPlaintext(j, "plaintext", *plain);
            else
                j["error"] = plain.status().message();
            io.out << dumpLine(j);
        } else if (plain) {
            io.out << *plain << "\n";
        } else {
            io.out << "\n";
            io.err << "sluicectl decrypt: value " << tally.rows << ": " << plain.status().message() << "\n";
        }
        if (!plain) {
            ++tally.failedValues;
            ++tally.failedRows;
        }
    });
    return finish(io, tally, "input(s)");
}

// ---- events ----

// The contract named on the command line, as the database recorded it.
struct ContractInfo {
    std::string table;
    ContractSpec spec;
};

ContractInfo findContract(store::Db& db, const po::variables_map& vm)
{
    const bool byRef = vm.count("contract") > 0;
    const std::string key = byRef               ? vm["contract"].as<std::string>()
                            : vm.count("table") ? vm["table"].as<std::string>()
                                                : vm["view"].as<std::string>();
    auto stored = take(byRef ? store::contractByRef(db, key) : store::contractByTable(db, key), "reading contracts");
    if (!stored) {
        if (auto output = take(store::outputByName(db, key), "reading outputs"))
            throw Failure(kExitUsage, "'" + key + "' is the derived output '" + output->name +
                                          "': it already shows what consent allows; decrypt its source events with "
                                          "--contract " + output->contract);
        throw Failure(kExitDataErr, byRef ? "the database has no contract '" + key + "'"
                                          : "the database has no contract table or view '" + key + "'");
    }
    auto spec = config::parseContract(stored->definition, "the database's contract " + stored->ref);
    if (!spec)
        throw Failure(kExitDataErr, spec.status().message());
    return ContractInfo{stored->tableName, std::move(*spec)};
}

int decryptEvents(store::Db& db, StoredKeyRing& keys, const po::variables_map& vm,
                  const std::optional<std::vector<std::string>>& onlyLinks, Io& io)
{
    const ContractInfo contract = findContract(db, vm);
    Tally tally;
    // The shared rendering (core/row_json.h) with every PII value decrypted: the exporters' JSON,
    // in plaintext.
    RowEncoder encoder = RowEncoder::forEvents(contract.spec);
    std::vector<std::string> names;
    std::vector<Cell> cells;
    int keyLinkColumn = -1;
    std::string keyLink;
    Json errors = Json::array();
    const RowEncoder::ValueHook decryptHook = [&](const FieldSpec& field, std::string_view stored, int index,
                                                  std::string& out) {
        auto plain = keys.decryptBase64(keyLink, stored);
        if (plain) {
            // Bytes that are not UTF-8 come out with U+FFFD in their place.
            out += Json(*plain).dump(-1, ' ', false, Json::error_handler_t::replace);
            return true;
        }
        out += "null";
        errors.push_back(Json{{"field", index < 0 ? field.name : field.name + "[" + std::to_string(index) + "]"},
                              {"error", plain.status().message()}});
        ++tally.failedValues;
        if (keys.lastWasShredded())
            ++tally.shredded;
        return true;
    };
    std::string line;
    auto printEvent = [&](const store::Stmt& stmt) {
        const int columns = stmt.columnCount();
        if (names.empty()) {
            for (int c = 0; c < columns; ++c) {
                names.emplace_back(stmt.columnName(c));
                if (names.back() == "key_link")
                    keyLinkColumn = c;
            }
            encoder.prepare(names);
            cells.resize(names.size());
        }
        ++tally.rows;
        for (int c = 0; c < columns; ++c)
            cells[static_cast<size_t>(c)] = stmt.columnCell(c);
        keyLink = keyLinkColumn >= 0 ? std::string(stmt.columnText(keyLinkColumn)) : std::string();
        errors = Json::array();
        line.clear();
        encoder.encode(cells, line, &decryptHook);
        if (!errors.empty()) {
            ++tally.failedRows;
            line.pop_back();  // the closing brace
            line += ",\"_errors\":" + errors.dump(-1, ' ', false, Json::error_handler_t::replace) + "}";
        }
        io.out << line << "\n";
    };
    check(store::forEachEventRow(db, contract.table, onlyLinks, vm["limit"].as<int64_t>(), printEvent));
    return finish(io, tally, "event(s)");
}

int decryptDeadLetters(store::Db& db, StoredKeyRing& keys, const po::variables_map& vm, Io& io)
{
    store::DeadLetterFilter filter;
    if (vm.count("reason"))
        filter.reason = vm["reason"].as<std::string>();
    if (vm.count("contract"))
        filter.contract = vm["contract"].as<std::string>();
    filter.limit = vm["limit"].as<int64_t>();
    Tally tally;
    check(store::forEachDeadLetter(db, filter, [&](const store::StoredDeadLetter& d) {
        ++tally.rows;
        Json j;
        j["id"] = d.id;
        j["batch_id"] = d.batchId;
        j["received_at"] = isoTimeMs(d.receivedAtMs);
        j["reason"] = d.reason;
        j["message"] = d.message;
        if (d.contract)
            j["contract"] = *d.contract;
        if (d.eventId)
            j["event_id"] = *d.eventId;
        if (d.producer) {
            j["producer"] = *d.producer;
            if (d.seq)
                j["seq"] = *d.seq;
        }
        if (d.eventIndex)
            j["event_index"] = *d.eventIndex;
        j["input_bytes"] = d.inputBytes;
        if (!d.input || !d.inputKeyLink) {
            j["input"] = nullptr;  // not kept (store.dead_letter_input = 0)
        } else {
            auto plain = keys.decryptRaw(*d.inputKeyLink, *d.input);
            if (plain) {
                putPlaintext(j, "input", *plain);
                j["input_truncated"] = static_cast<int64_t>(plain->size()) < d.inputBytes;
            } else {
                j["input"] = nullptr;
                j["_errors"] = Json::array({Json{{"field", "input"}, {"error", plain.status().message()}}});
                ++tally.failedValues;
                ++tally.failedRows;
                if (keys.lastWasShredded())
                    ++tally.shredded;
            }
        }
        io.out << dumpLine(j);
    }), "reading dead letters");
    return finish(io, tally, "dead letter(s)");
}

}  // namespace

int runDecrypt(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    options.add_options()
        ("keys,k", po::value<std::string>()->value_name("FILE"), "a key export or Tink keyset (no database needed)")
        ("json", "values: one JSON object per input")
        ("contract", po::value<std::string>()->value_name("REF"), "decrypt this contract's events")
        ("table", po::value<std::string>()->value_name("NAME"), "the same, by events table name")
        ("view", po::value<std::string>()->value_name("NAME"), "the same, by view name")
        ("dead-letters", "decrypt the inputs of dead letters instead")
        ("reason", po::value<std::string>()->value_name("R"), "dead letters of this reason only")
        ("key-link", po::value<std::vector<std::string>>()->value_name("L"), "events of this key link (repeatable)");
    addSubjectOptions(options, "decrypt its events");
    options.add_options()("limit", po::value<int64_t>()->default_value(0)->value_name("N"), "at most N rows (0: all)");
    addConfigOptions(options);
    po::options_description hidden;
    hidden.add_options()("value", po::value<std::vector<std::string>>(), "values");
    po::positional_options_description positional;
    positional.add("value", -1);
    po::variables_map vm;
    if (!parseCommandLine(kDecrypt, args, options, vm, io, &hidden, &positional))
        return kExitOk;

    const std::vector<std::string> values =
        vm.count("value") ? vm["value"].as<std::vector<std::string>>() : std::vector<std::string>{};
    const int sources = static_cast<int>(vm.count("contract") && !vm.count("dead-letters")) +
                        static_cast<int>(vm.count("table")) + static_cast<int>(vm.count("view"));
    const bool events = sources > 0;
    const bool deadLetters = vm.count("dead-letters") > 0;
    if (sources > 1)
        throw Failure(kExitUsage, "give one of --contract, --table and --view");
    if ((events || deadLetters) && !values.empty())
        throw Failure(kExitUsage, "values on the command line decrypt single values; they do not combine with "
                                  "--contract, --table, --view or --dead-letters");
    if (events && deadLetters)
        throw Failure(kExitUsage, "--dead-letters reads the dead letters, not a contract's events");
    if (vm["limit"].as<int64_t>() < 0)
        throw Failure(kExitUsage, "--limit must be 0 (all) or more");
    const bool rowFilters = vm.count("key-link") || vm.count("subject") || vm.count("subject-file");
    if (rowFilters && !events)
        throw Failure(kExitUsage, "--key-link and --subject select events: use them with --contract, --table or --view");
    if (vm.count("reason") && !deadLetters)
        throw Failure(kExitUsage, "--reason selects dead letters: use it with --dead-letters");

    if (vm.count("keys")) {
        if (events || deadLetters)
            throw Failure(kExitUsage, "--keys decrypts single values; events and dead letters need the database "
                                      "(--config) and the master key");
        const std::string path = vm["keys"].as<std::string>();
        auto ring = FileKeyRing::load(path);
        if (!ring)
            throw Failure(ring.status().code() == StatusCode::kIoError ? kExitIoErr : kExitDataErr,
                          ring.status().message());
        if (ring->keys() == 0)
            throw Failure(kExitDataErr, path + " holds no keys");
        return decryptValues(values, vm.count("json") > 0, io,
                             [&](std::string_view v) { return ring->decryptBase64(v); });
    }

    const config::Config cfg = loadToolConfig(vm);
    store::Db db = openDatabase(cfg, false);
    const privacy::KeyWrapper wrapper = loadKeyWrapper(cfg, &db);
    transform::DbWrappedKeys stored(db);
    StoredKeyRing keys = take(StoredKeyRing::create(stored, wrapper), "AES-SIV");
    if (deadLetters)
        return decryptDeadLetters(db, keys, vm, io);
    if (events) {
        std::optional<std::vector<std::string>> links;
        if (vm.count("key-link"))
            links = vm["key-link"].as<std::vector<std::string>>();
        bool unknownSubject = false;
        if (auto subject = readSubject(vm)) {
            std::vector<std::string> found =
                take(store::subjectKeyLinks(db, subjectDigest(wrapper, subject->view())), "reading key_subjects");
            unknownSubject = found.empty();
            if (!links)
                links.emplace();
            links->insert(links->end(), found.begin(), found.end());
        }
        const int code = decryptEvents(db, keys, vm, links, io);
        if (!unknownSubject)
            return code;
        // As for a key link whose key was shredded: nothing of the subject can be decrypted.
        io.err << "sluicectl decrypt: no key is linked to that subject: it was forgotten (its keys were shredded; "
                  "its events stay encrypted for ever) or never seen\n";
        return kExitDataErr;
    }
    return decryptValues(values, vm.count("json") > 0, io, [&](std::string_view v) { return keys.decryptAnyBase64(v); });
}

}  // namespace sluice::cli
