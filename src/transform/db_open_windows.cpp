#include "transform/db_open_windows.h"

#include <optional>
#include <vector>

#include "aggregate/window.h"
#include "store/db.h"
#include "store/reprocess.h"
#include "store/state.h"
#include "transform/db_keys.h"
#include "transform/stored_events.h"

namespace sluice::transform {
namespace {

// Events replayed between two Aggregator::replayed() calls (closed sessions leave memory).
constexpr uint64_t kReplayedEventsBetweenSettles = 100'000;

Result<OpenWindowsRestore> restoreOpenWindows(store::Db& db, const privacy::KeyWrapper& wrapper, aggregate::Aggregator& aggregator,
                                   const AggregationSpec& spec, const ContractSpec& contract)
{
    OpenWindowsRestore out;
    const std::string sql = aggregator.openWindowsQuery();
    if (sql.empty())
        return out;
    auto exists = store::tableExists(db, aggregator.table().tableName());
    if (!exists)
        return exists.status();
    if (!*exists)
        return out;
    auto snapshot = store::loadSessionSnapshot(db, spec.name);
    if (!snapshot)
        return snapshot.status();
    if (!*snapshot) {
        // Kept by a sluice before snapshots: every open session is a row of agg_<name>.
        auto stmt = db.prepare(sql);
        if (!stmt)
            return stmt.status();
        std::vector<Cell> cells;
        SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const store::Stmt& row) -> Status {
            cells.clear();
            for (int i = 0; i < row.columnCount(); ++i)
                cells.push_back(row.columnCell(i));
            ++out.sessions;
            return aggregator.restoreOpenWindow(cells);
        }));
        return out;
    }

    out.fromSnapshot = true;
    aggregator.restoreSnapshot((*snapshot)->maxEventTimeMs);
    SLUICE_RETURN_IF_ERROR(store::forEachSessionState(db, spec.name, [&](std::string_view state) {
        ++out.sessions;
        return aggregator.restoreSnapshotRow(state);
    }));

    // The batches committed after the snapshot, as they arrived.
    const std::string table = contract.tableName();
    auto from = store::lastSeqOfBatch(db, table, (*snapshot)->batchId);
    if (!from)
        return from.status();
    auto upTo = store::lastEventSeq(db, table);
    if (!upTo)
        return upTo.status();
    if (*upTo <= *from)
        return out;
    StoredEventDecoder decoder(spec, contract);
    std::optional<IndexedWrappedKeys> stored;
    std::optional<privacy::StoredKeyRing> keys;
    if (decoder.readsPii()) {
        auto indexed = IndexedWrappedKeys::create(db);
        if (!indexed)
            return indexed.status();
        stored.emplace(std::move(*indexed));
        auto ring = privacy::StoredKeyRing::create(*stored, wrapper);
        if (!ring)
            return ring.status();
        keys.emplace(std::move(*ring));
    }
    SLUICE_RETURN_IF_ERROR(
        store::forEachEventInOrder(db, table, decoder.columns(), *from, *upTo, [&](const store::Stmt& row) -> Status {
            const StoredEventDecoder::Event e = decoder.decode(row, keys ? &*keys : nullptr);
            out.missingPii += e.missingPii;
            if (e.grouped)
                aggregator.add(e.timeMs, e.consent, e.fields);
            else if (e.timeMs >= aggregate::kMinEventTimeMs && e.timeMs <= aggregate::kMaxEventTimeMs)
                aggregator.setMaxEventTimeMs(e.timeMs);
            if (++out.replayed % kReplayedEventsBetweenSettles == 0)
                aggregator.replayed();
            return Status::ok();
        }));
    aggregator.replayed();
    return out;
}

}  // namespace

OpenWindowsReader databaseOpenWindows(std::string path, const privacy::KeyWrapper& wrapper)
{
    return [path = std::move(path), &wrapper](aggregate::Aggregator& aggregator, const AggregationSpec& spec,
                                              const ContractSpec& contract) -> Result<OpenWindowsRestore> {
        if (aggregator.openWindowsQuery().empty())
            return OpenWindowsRestore{};
        store::Db::Options options;
        options.readOnly = true;
        auto db = store::Db::open(path, options);
        if (!db)
            return db.status();
        // One read transaction for the whole restore: the snapshot and the events after it agree
        // while the daemon's writer commits (a reload).
        SLUICE_RETURN_IF_ERROR(store::beginRead(*db));
        auto out = restoreOpenWindows(*db, wrapper, aggregator, spec, contract);
        (void)store::endRead(*db);
        return out;
    };
}

}  // namespace sluice::transform
