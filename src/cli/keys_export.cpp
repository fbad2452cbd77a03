// sluicectl keys export: data keys for the data owner, as Tink keysets or the keyLink CSV.
#include <boost/program_options.hpp>

#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/time_format.h"
#include "core/value.h"
#include "privacy/tink_keyset.h"
#include "store/key_table.h"

namespace sluice::cli {
namespace {

const Command kKeysExport = {
    "keys export",
    "[options]",
    "Writes the selected data keys, unwrapped with the master key, to --output (mode 0600) or stdout.",
    R"(Selection (combine freely; without any, every data key is exported):
  --key-link L (repeatable), --subject VALUE / --subject-file FILE (the keys that encrypted
  that data subject's events), --from / --to (creation time: ISO-8601 such as 2025-11-21 or
  2025-11-21T08:00:00Z, or epoch milliseconds; --to is exclusive).

Formats:
  tink (default)  JSON lines, one per key link:
                  {"keyLink": "...", "contract": "...", "createdAt": MS, "expiresAt": MS,
                   "keyset": {"primaryKeyId": ID, "key": [{... AesSivKey ...}]}}
                  "keyset" is a Tink cleartext JSON keyset that Tink reads as it is.
  csv             keyLink,encryptionKey,policyId,expiresAt with the keyset JSON as encryptionKey,
                  the contract ref as policyId and expiresAt in epoch milliseconds.

The output holds keys in clear: keep it as secret as the master key.
Exit codes: 0 ok (also when nothing matched), 77 the master key is missing or wrong,
69 no database, 78 bad configuration.

Examples:
  sluicectl keys export --config /etc/sluice/sluiced.conf --output keys.jsonl
  sluicectl keys export --subject-file subject.txt --format csv --output subject-keys.csv
  sluicectl keys export --from 2025-11-01 --to 2025-12-01 > november.jsonl
)",
};

}  // namespace

int runKeysExport(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    options.add_options()
        ("key-link", po::value<std::vector<std::string>>()->value_name("L"), "export this key link (repeatable)");
    addSubjectOptions(options, "export its keys");
    options.add_options()
        ("from", po::value<std::string>()->value_name("TIME"), "keys created at or after TIME")
        ("to", po::value<std::string>()->value_name("TIME"), "keys created before TIME")
        ("all", "every data key (the default when nothing else selects)")
        ("format", po::value<std::string>()->default_value("tink")->value_name("tink|csv"), "output format")
        ("output,o", po::value<std::string>()->value_name("FILE"), "write to FILE (created with mode 0600)")
        ("force", "replace --output if it exists")
        ("quiet,q", "no summary on standard error");
    addConfigOptions(options);
    po::variables_map vm;
    if (!parseCommandLine(kKeysExport, args, options, vm, io))
        return kExitOk;

    const std::string format = vm["format"].as<std::string>();
    if (format != "tink" && format != "csv")
        throw Failure(kExitUsage, "--format must be tink or csv, not '" + format + "'");
    store::KeyFilter filter;
    for (const char* name : {"from", "to"}) {
        if (!vm.count(name))
            continue;
        auto t = parseTimeMs(vm[name].as<std::string>());
        if (!t)
            throw Failure(kExitUsage, std::string("--") + name + ": '" + vm[name].as<std::string>() +
                                          "' is neither ISO-8601 nor epoch milliseconds");
        (name[0] == 'f' ? filter.createdFromMs : filter.createdToMs) = *t;
    }
    const std::vector<std::string> links =
        vm.count("key-link") ? vm["key-link"].as<std::vector<std::string>>() : std::vector<std::string>{};
    const bool selective = !links.empty() || vm.count("subject") || vm.count("subject-file") || vm.count("from") ||
                           vm.count("to");
    if (vm.count("all") && selective)
        throw Failure(kExitUsage, "--all exports every key; do not combine it with a selection");

    const config::Config cfg = loadToolConfig(vm);
    store::Db db = openDatabase(cfg, false);
    const privacy::KeyWrapper wrapper = loadKeyWrapper(cfg, &db);
    if (auto subject = readSubject(vm))
        filter.subject = subjectDigest(wrapper, subject->view());

    std::vector<store::StoredKey> keys;
    if (links.empty()) {
        keys = take(store::findKeys(db, filter), "reading keys");
    } else {
        for (const std::string& link : links) {
            filter.keyLink = link;
            auto found = take(store::findKeys(db, filter), "reading keys");
            for (auto& k : found)
                keys.push_back(std::move(k));
        }
    }

    OutputSink sink(io, vm.count("output") ? vm["output"].as<std::string>() : std::string(), vm.count("force") > 0);
    std::string line;
    if (format == "csv") {
        privacy::appendKeyExportCsvHeader(line);
        sink.write(line);
        line.clear();
    }
    for (const store::StoredKey& k : keys) {
        auto key = wrapper.unwrap(k.wrapped, k.keyLink);
        if (!key) {
            if (key.status().code() == StatusCode::kPermission)
                throw Failure(kExitNoPerm, "key " + k.keyLink +
                                               " does not unwrap with this master key (a wrong master key, or an "
                                               "altered key row); nothing more was written");
            check(key.status(), "key " + k.keyLink);
        }
        auto keyset = privacy::tinkKeysetJson(k.keyId, key->view());
        if (!keyset)
            check(keyset.status(), "key " + k.keyLink);
        if (format == "csv") {
            privacy::KeyExportRow row{k.keyLink, std::move(*keyset), k.contract, k.expiresAtMs};
            privacy::appendKeyExportCsvRow(line, row);
            wipe(row.encryptionKey);
        } else {
            privacy::appendKeyExportJsonLine(line, k.keyLink, k.contract, k.createdAtMs, k.expiresAtMs, *keyset);
            wipe(*keyset);
        }
        sink.write(line);
        wipe(line);
    }
    sink.finish();
    if (!vm.count("quiet")) {
        io.err << "exported " << keys.size() << " key(s) as " << format << " to "
               << (sink.toFile() ? sink.path() : std::string("standard output"));
        if (keys.empty())
            io.err << " (no key matched the selection)";
        io.err << "\n";
    }
    return kExitOk;
}

}  // namespace sluice::cli
