// sluicectl forget: crypto-shredding of a data subject or of key links (spec section 5).
#include <boost/program_options.hpp>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/clock.h"
#include "core/time_format.h"
#include "store/key_table.h"

namespace sluice::cli {
namespace {

const Command kForget = {
    "forget",
    "(--subject VALUE | --subject-file FILE | --key-link L...) [options]",
    "Crypto-shreds a data subject or key links: deletes their keys, subject links, derived rows\n"
    "(which hold plaintext) and dead-letter copies in one transaction, then checkpoints and\n"
    "truncates the WAL so that no copy of a key stays in the database files.",
    R"(The encrypted events stay, unreadable for ever. Safe while sluiced runs: it sees the shredding
(shred_log) before its next batch and stops using those keys; a later event of the subject gets a
new key. --dry-run lists what would be removed and changes nothing.

Prints the number of keys, derived rows and dead-letter inputs removed and every key link.
Exit codes: 0 done (also when nothing matched: forgetting twice is harmless), 65 a --key-link
that never existed, 75 deleted but the WAL could not be truncated yet (run the command again),
77 master key missing or wrong (needed for --subject), 69 no database.

Examples:
  sluicectl forget --config /etc/sluice/sluiced.conf --subject-file subject.txt
  sluicectl forget --key-link 6f1c2b1e-8d7a-4d47-9a55-0c7c9e3b2f10 --dry-run
)",
};

}  // namespace

int runForget(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    addSubjectOptions(options, "forget everything encrypted for it");
    options.add_options()
        ("key-link", po::value<std::vector<std::string>>()->value_name("L"), "forget this key link (repeatable)")
        ("dry-run,n", "list what would be removed; change nothing")
        ("checkpoint-timeout", po::value<std::string>()->default_value("10s")->value_name("DURATION"),
         "how long to wait for readers to let the WAL be truncated")
        ("json", "print the report as one JSON object");
    addConfigOptions(options);
    po::variables_map vm;
    if (!parseCommandLine(kForget, args, options, vm, io))
        return kExitOk;

    const bool bySubject = vm.count("subject") || vm.count("subject-file");
    const std::vector<std::string> requested =
        vm.count("key-link") ? vm["key-link"].as<std::vector<std::string>>() : std::vector<std::string>{};
    if (bySubject == !requested.empty())
        throw Failure(kExitUsage, "give either --subject/--subject-file or --key-link");
    const bool dryRun = vm.count("dry-run") > 0;
    const bool json = vm.count("json") > 0;
    auto timeout = parseDurationMs(vm["checkpoint-timeout"].as<std::string>());
    if (!timeout || *timeout < 0 || *timeout > 3'600'000)
        throw Failure(kExitUsage, "--checkpoint-timeout: not a duration up to 1h");

    const config::Config cfg = loadToolConfig(vm);
    store::Db db = openDatabase(cfg, !dryRun);

    std::vector<store::StoredKey> keys;
    std::vector<std::string> notes;
    bool unknownLink = false;
    std::string cause;
    if (bySubject) {
        auto subject = readSubject(vm);
        const privacy::KeyWrapper wrapper = loadKeyWrapper(cfg, &db);
        store::KeyFilter filter;
        filter.subject = subjectDigest(wrapper, subject->view());
        keys = take(store::findKeys(db, filter), "reading keys");
        if (keys.empty())
            notes.push_back("no key is linked to that subject (never seen, or already forgotten)");
        cause = "sluicectl forget --subject";
    } else {
        for (const std::string& link : requested) {
            bool found = false;
            for (const char* kind : {"data", "dead_letter"}) {
                store::KeyFilter filter;
                filter.keyLink = link;
                filter.kind = kind;
                for (auto& k : take(store::findKeys(db, filter), "reading keys")) {
                    keys.push_back(std::move(k));
                    found = true;
                }
            }
            if (found)
                continue;
            if (auto shred = take(store::lastShredOf(db, link), "reading shred_log")) {
                notes.push_back("key " + link + " was already shredded at " + isoTimeMs(shred->atMs) + " (" +
                                shred->cause + ")");
            } else {
                notes.push_back("key " + link + " does not exist in this database");
                unknownLink = true;
            }
        }
        cause = "sluicectl forget --key-link";
    }
    std::vector<std::string> links;
    for (const auto& k : keys)
        links.push_back(k.keyLink);

    store::ShredReport report;
    bool checkpointed = false;
    std::string checkpointError;
    if (dryRun) {
        report = take(store::previewShred(db, links), "counting what would be shredded");
    } else {
        if (!links.empty()) {
            auto txn = take(store::Txn::begin(db), "starting the transaction");
            report = take(store::shredKeys(db, links, cause, SystemClock::instance().wallMs()), "shredding");
            check(txn.commit(), "committing the shredding");
        }
        // Also when nothing matched: running forget again is how a failed truncation is retried.
        Status s = store::checkpointTruncate(db, static_cast<int>(*timeout));
        checkpointed = s.isOk();
        if (!s)
            checkpointError = s.message();
    }

    if (json) {
        nlohmann::ordered_json j;
        j["dry_run"] = dryRun;
        j["keys"] = report.keys;
        j["derived_rows"] = report.derivedRows;
        j["dead_letters"] = report.deadLetters;
        j["key_links"] = report.keyLinks;
        if (!dryRun)
            j["wal_truncated"] = checkpointed;
        j["notes"] = notes;
        io.out << j.dump() << "\n";
    } else {
        for (const std::string& n : notes)
            io.out << n << "\n";
        if (!keys.empty()) {
            io.out << (dryRun ? "would forget " : "forgot ") << report.keys << " key(s): " << report.derivedRows
                   << " derived row(s) and " << report.deadLetters << " dead-letter input(s) "
                   << (dryRun ? "would be deleted" : "deleted")
                   << "; the events they encrypted stay, unreadable\nkey links:\n";
            for (const auto& k : keys)
                io.out << "  " << k.keyLink << "  " << (k.kind == "data" ? k.contract : k.kind) << ", created "
                       << isoTimeMs(k.createdAtMs) << "\n";
        } else if (notes.empty()) {
            io.out << "nothing to forget\n";
        }
        if (checkpointed && !links.empty())
            io.out << "WAL checkpointed and truncated: no copy of a deleted key remains in " << cfg.store.database
                   << " or its -wal file\n";
        else if (checkpointed)
            io.out << "nothing was deleted now; the WAL was checkpointed and truncated all the same, so no copy of a "
                      "key deleted before remains in "
                   << cfg.store.database << " or its -wal file\n";
    }
    io.out.flush();
    if (!dryRun && !checkpointed) {
        io.err << "sluicectl forget: " << (links.empty() ? "" : "the keys are deleted (committed), but ")
               << "the WAL could not be truncated yet: " << checkpointError
               << "; run the same command again to retry\n";
        return kExitTempFail;
    }
    return unknownLink ? kExitDataErr : kExitOk;
}

}  // namespace sluice::cli
