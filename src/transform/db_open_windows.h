// The open windows of an aggregation as the database holds them: session windows keep every
// open session in their table (final = 0), so that a restarted daemon goes on merging into
// them. A Transformer reads them back through this when it makes a new Aggregator.
#pragma once

#include <functional>
#include <string>

#include "aggregate/aggregator.h"
#include "core/status.h"

namespace sluice::transform {

// Hands `aggregator` its open windows; fails on a row it cannot take.
using OpenWindowsReader = std::function<Status(aggregate::Aggregator& aggregator)>;

// Reads them from the database at `path` (a read-only connection for the call). A table not
// created yet holds none.
OpenWindowsReader databaseOpenWindows(std::string path);

}  // namespace sluice::transform
