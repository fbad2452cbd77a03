// The open windows of an aggregation as the database holds them. Session windows keep their
// open sessions in snapshots (session_snapshots and session_snapshot_rows, written every
// pipeline.session_snapshot_interval): a new Aggregator reads the snapshot back and replays the
// events committed after it, so that a restarted daemon goes on merging into the sessions it
// had. A Transformer reads them back through this when it makes a new Aggregator.
#pragma once

#include <functional>
#include <string>

#include "aggregate/aggregator.h"
#include "core/spec.h"
#include "core/status.h"
#include "privacy/key_wrap.h"

namespace sluice::transform {

// What one restore did (for the log).
struct OpenWindowsRestore {
    size_t sessions = 0;         // read from the snapshot (or from agg_<name> without one)
    uint64_t replayed = 0;       // events of batches after the snapshot replayed
    uint64_t missingPii = 0;     // PII values of those that could not be decrypted (shredded keys)
    bool fromSnapshot = false;
};

// Hands `aggregator` (made from `spec` over `contract`, no event added yet, no max event time
// set) its open windows; fails on a row it cannot take.
using OpenWindowsReader = std::function<Result<OpenWindowsRestore>(
    aggregate::Aggregator& aggregator, const AggregationSpec& spec, const ContractSpec& contract)>;

// Reads them from the database at `path` (a read-only connection for the call): the
// aggregation's snapshot and the events of contract's table committed in later batches, PII
// fields decrypted with the keys `wrapper` unwraps (the ones that still exist); without a
// snapshot, the rows of agg_<name> with final = 0. A table not created yet holds none.
// `wrapper` must outlive the reader.
OpenWindowsReader databaseOpenWindows(std::string path, const privacy::KeyWrapper& wrapper);

}  // namespace sluice::transform
