// sluicectl reprocess: recomputes an aggregation from the committed events and replaces the
// final windows of a range in one transaction (docs/aggregation.md, "Reprocessing").
#include <boost/program_options.hpp>

#include <algorithm>
#include <limits>

#include "aggregate/aggregator.h"
#include "aggregate/window.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "transform/db_keys.h"
#include "core/time_format.h"
#include "privacy/key_ring.h"
#include "store/batch_writer.h"
#include "store/reprocess.h"
#include "transform/pipeline_runtime.h"
#include "transform/stored_events.h"

namespace sluice::cli {
namespace {

const Command kReprocess = {
    "reprocess",
    "--aggregation NAME [--from TIME] [--to TIME] [--complete] [options]",
    "Recomputes an aggregation from the committed events and replaces its final windows.",
    R"(Reads the contract's committed events in the order the daemon committed them, computes the
aggregation as the pipeline files define it (which must be the definition the daemon runs: the
aggregations table records it), and replaces, in one transaction, the windows that start in
[--from, --to) and are final at the stored watermark. Open windows stay the daemon's: this runs
while the daemon runs (its next commit waits for the replacing transaction).

  --from, --to   window starts, ISO-8601 (2026-11-21T08:00Z) or epoch milliseconds; without
                 them, every window
  --complete     every committed event counts, late ones included (the batch layer's answer);
                 the rows get complete = 1 and late_events is left as it is. Without it the
                 stream is replayed as it arrived (same watermarks, same late decisions), which
                 gives what the daemon computed, or backfills an aggregation added later.

PII fields the aggregation needs (distinct, the people counted for min_group_size, a session's
key) are decrypted with the keys that still exist: a forgotten subject's values are missing, and
an event whose PII group value is gone counts in no window.

Exit codes: 0 replaced; 64 --from not before --to; 65 an aggregation the pipeline files or the
database do not know, nothing committed in the range, or no final window in it; 77 master key
missing or wrong; 78 the pipeline files define the aggregation differently from the daemon.
Nothing is changed unless it exits 0.

Examples:
  sluicectl reprocess --config /etc/sluice/sluiced.conf --aggregation revenue_by_country
  sluicectl reprocess --aggregation visits --from 2026-11-21 --to 2026-11-22 --complete
)",
};

// Events read between two flushes of a session aggregation (see onEvent).
constexpr uint64_t kSessionFlushEvents = 500'000;

int64_t saturatingAdd(int64_t a, int64_t b)
{
    int64_t out = 0;
    if (__builtin_add_overflow(a, b, &out))
        return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
    return out;
}

int64_t timeOption(const po::variables_map& vm, const char* name, int64_t fallback)
{
    if (!vm.count(name))
        return fallback;
    const std::string text = vm[name].as<std::string>();
    auto ms = parseTimeMs(text);
    if (!ms)
        throw Failure(kExitUsage, std::string("--") + name + " '" + text +
                                      "' is not a time (ISO-8601 such as 2026-11-21T08:00Z, or epoch milliseconds)");
    return *ms;
}

}  // namespace

int runReprocess(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    options.add_options()
        ("aggregation,a", po::value<std::string>()->value_name("NAME"), "the aggregation to recompute")
        ("from", po::value<std::string>()->value_name("TIME"), "first window start (included)")
        ("to", po::value<std::string>()->value_name("TIME"), "last window start (excluded)")
        ("complete", "count every committed event, late ones included");
    addConfigOptions(options);
    po::variables_map vm;
    if (!parseCommandLine(kReprocess, args, options, vm, io))
        return kExitOk;
    if (!vm.count("aggregation"))
        throw Failure(kExitUsage, "--aggregation NAME is required");
    const std::string name = vm["aggregation"].as<std::string>();
    const bool complete = vm.count("complete") > 0;
    const int64_t fromMs = timeOption(vm, "from", std::numeric_limits<int64_t>::min());
    const int64_t toMs = timeOption(vm, "to", std::numeric_limits<int64_t>::max());
    if (fromMs >= toMs)
        throw Failure(kExitUsage, "the range is empty: --from " + isoTimeMs(fromMs) + " is not before --to " +
                                      isoTimeMs(toMs) + "; nothing was changed");

    const config::Config cfg = loadToolConfig(vm);
    const PipelineSpec& pipeline = *cfg.pipelineSpec;
    const AggregationSpec* spec = nullptr;
    std::string known;
    for (const AggregationSpec& a : pipeline.aggregations) {
        known += (known.empty() ? "" : ", ") + a.name;
        if (a.name == name)
            spec = &a;
    }
    if (!spec)
        throw Failure(kExitDataErr, "the pipeline files define no aggregation '" + name + "' (they define: " +
                                        (known.empty() ? std::string("none") : known) + "); nothing was changed");
    const ContractSpec& contract = *pipeline.findContract(spec->contract);

    store::Db db = openDatabase(cfg, true);
    const auto stored = take(store::storedAggregationDefinition(db, name), "reading the aggregations table");
    if (!stored)
        throw Failure(kExitDataErr, "the database has no aggregation '" + name +
                                        "': the daemon creates its table when it loads the pipeline (start or "
                                        "reload it first); nothing was changed");
    if (*stored != aggregationDefinition(*spec, contract))
        throw Failure(kExitConfig, "the pipeline files define '" + name +
                                       "' differently from the definition the daemon runs (aggregations.definition: " +
                                       *stored + "); reload the daemon or restore the files first; nothing was changed");

    const privacy::KeyWrapper wrapper = loadKeyWrapper(cfg, &db);
    transform::IndexedWrappedKeys storedKeys = take(transform::IndexedWrappedKeys::create(db), "indexing the keys table");
    privacy::StoredKeyRing keys = take(privacy::StoredKeyRing::create(storedKeys, wrapper), "AES-SIV");
    auto sketchKey = take(wrapper.deriveKey(privacy::kLabelSketch, aggregate::kSipKeyBytes), "deriving the sketch key");
    AggregationSpec recompute = *spec;
    if (complete)
        recompute.allowedLatenessMs = aggregate::kMaxLatenessMs;  // nothing is late, nothing closes
    aggregate::Aggregator aggregator = take(
        aggregate::Aggregator::create(recompute, contract,
                                      std::span<const uint8_t, aggregate::kSipKeyBytes>(sketchKey.data(),
                                                                                       aggregate::kSipKeyBytes)),
        "aggregation " + name);
    const store::SketchFunctions functions = transform::sketchFunctions();
    check(store::registerSketchFunctions(db, functions), "registering the SQL functions");
    auto shadow = take(store::ShadowAggregation::create(db, spec->tableName(), name), "creating the shadow table");

    // Tumbling and sliding windows starting in [from, to) hold events of [from, to + size);
    // other events only move the watermark. A session can reach back or forward any distance:
    // sessions read every event.
    const bool session = spec->window == WindowKind::kSession;
    const int64_t eventsFrom = session ? std::numeric_limits<int64_t>::min() : fromMs;
    const int64_t eventsTo = session ? std::numeric_limits<int64_t>::max() : saturatingAdd(toMs, spec->windowMs);

    transform::StoredEventDecoder decoder(*spec, contract);
    int64_t lastBatch = -1;
    uint64_t read = 0, fed = 0, dropped = 0, undecryptable = 0;
    uint64_t readAtFlush = 0;
    Arena arena;

    // Session windows write their open sessions only with a snapshot: the last flush takes one
    // (its batch id and snapshot rows go nowhere: the shadow takes agg_<name> and late_events).
    auto flush = [&](bool last) -> Status {
        readAtFlush = read;
        WriteBatch out;
        aggregator.flush(arena, out, last ? std::optional<uint64_t>(1) : std::nullopt);
        Status s = shadow->apply(out);
        arena = Arena();
        return s;
    };
    auto onEvent = [&](const store::Stmt& row) -> Status {
        ++read;
        const transform::StoredEventDecoder::Event e = decoder.decode(row, &keys);
        const int64_t batch = e.batchId;
        // Tumbling and sliding windows flush once per stored batch, as the daemon did: a row is
        // the sum of its batches' partials, and floating-point sums depend on that grouping.
        // Sessions are kept whole in memory and written as full rows, so where the stream is cut
        // changes none of them (tests/aggregate/window_shapes_test.cpp: random cuts, one batch, a
        // restart); a flush per batch would only rewrite the shadow rows of sessions still
        // growing. They flush every kSessionFlushEvents events (closed sessions then leave memory).
        if (lastBatch >= 0 && batch != lastBatch && (!session || read - readAtFlush >= kSessionFlushEvents))
            SLUICE_RETURN_IF_ERROR(flush(false));
        lastBatch = batch;
        const int64_t t = e.timeMs;
        if (t < eventsFrom || t >= eventsTo) {
            if (t >= aggregate::kMinEventTimeMs && t <= aggregate::kMaxEventTimeMs)
                aggregator.setMaxEventTimeMs(t);
            return Status::ok();
        }
        undecryptable += e.missingPii;
        if (!e.grouped) {
            ++dropped;
            aggregator.setMaxEventTimeMs(t);
            return Status::ok();
        }
        ++fed;
        aggregator.add(t, e.consent, e.fields);
        return Status::ok();
    };

    // Everything committed so far, outside any write transaction: the daemon keeps committing.
    const std::string table = contract.tableName();
    const int64_t readUpTo = take(store::lastEventSeq(db, table), "reading " + table);
    check(store::forEachEventInOrder(db, table, decoder.columns(), 0, readUpTo, onEvent), "reading " + table);
    const uint64_t readBefore = read;

    // Then, holding the write lock: the batches committed meanwhile, the watermark, the swap.
    auto txn = take(store::Txn::begin(db), "starting the replacing transaction");
    const int64_t lastSeq = take(store::lastEventSeq(db, table), "reading " + table);
    check(store::forEachEventInOrder(db, table, decoder.columns(), readUpTo, lastSeq, onEvent), "reading " + table);
    check(flush(true), "recomputing " + name);
    if (fed == 0)
        throw Failure(kExitDataErr, "no committed event of " + contract.ref + " falls in the range" +
                                        (vm.count("from") || vm.count("to")
                                             ? " [" + isoTimeMs(fromMs) + ", " + isoTimeMs(toMs) + ")"
                                             : std::string()) +
                                        "; nothing was changed");
    const auto maxEventTime = take(store::storedMaxEventTime(db, contract.ref), "reading watermarks");
    if (!maxEventTime)
        throw Failure(kExitDataErr, "no watermark for " + contract.ref + " yet; nothing was changed");
    store::ReplaceRange range;
    range.aggregation = name;
    range.window = spec->window;
    range.sizeMs = spec->windowMs;
    range.gapMs = spec->gapMs;
    range.fromMs = fromMs;
    range.toMs = toMs;
    range.watermarkMs = *maxEventTime - spec->allowedLatenessMs;
    range.complete = complete;
    const store::ReplaceSummary summary = take(shadow->replace(range), "replacing windows of " + name);
    if (summary.deletedRows == 0 && summary.writtenRows == 0 && summary.lateWindows == 0)
        throw Failure(kExitDataErr, "no window of '" + name + "' in the range is final at the watermark " +
                                        isoTimeMs(range.watermarkMs) + "; nothing was changed");
    check(txn.commit(), "committing the replaced windows");

    io.out << "reprocessed " << name << " (" << windowKindName(spec->window) << ", "
           << (complete ? "complete: every committed event" : "replay: as the stream arrived") << "): " << read
           << " events read (" << (read - readBefore) << " committed during the run), " << fed << " aggregated";
    if (dropped)
        io.out << ", " << dropped << " left out (their PII group value's key was shredded)";
    if (undecryptable)
        io.out << ", " << undecryptable << " PII values missing (shredded keys)";
    io.out << "; windows final at " << isoTimeMs(range.watermarkMs) << ": " << summary.deletedRows
           << " stored rows replaced by " << summary.writtenRows;
    if (!complete)
        io.out << ", " << summary.lateWindows << " late_events rows";
    io.out << "\n";
    io.out.flush();
    return kExitOk;
}

}  // namespace sluice::cli
