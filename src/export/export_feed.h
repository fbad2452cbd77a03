// What the exporters share: each committed batch's records of a source, read from the database
// and encoded once, then handed to every exporter of that source.
//
// The exporter that comes first to a batch reads and encodes it (holding lockReading(), so that
// the others wait for it rather than read the same rows too) and offers the records; the other
// exporters of the source take them. An entry goes when the last of them has taken it.
//
// When one of them lags, the feed fills up to its byte budget. An exporter ahead of the others
// then waits (waitForRoom()) before it reads more, as long as entries keep going (the laggards
// take them): the exporters go at the pace of the slowest sink that works, nothing is read twice,
// and the records held stay near the budget. This is judged per source: the entries of a source
// none of which went for kPaceMs (the sink of one of its exporters is down or stuck) are not
// waited for; offer() drops them first when over the budget, and the laggard reads those batches
// again itself when it comes back. Memory stays bounded either way.
//
// Sources are told apart by a fingerprint of what their encoding depends on (sourceFingerprint):
// exporters that kept an older pipeline after a reload share only what encodes alike.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/spec.h"
#include "export/sink.h"

namespace sluice::exports {

// What a source's records depend on: kind, name and, for outputs and aggregations, the parts of
// their definition that shape the JSON. "keys" for the key records.
std::string sourceFingerprint(const PipelineSpec& pipeline, const ExportSourceSpec& source);
inline const std::string kKeysFingerprint = "keys";

class ExportFeed {
public:
    explicit ExportFeed(size_t budgetBytes = kDefaultBudgetBytes);

    static constexpr size_t kDefaultBudgetBytes = 4u << 20;
    // No entry went for this long: a laggard is stuck, nobody waits for it.
    static constexpr std::chrono::milliseconds kPaceMs{1000};

    // How many running exporters read each source (by fingerprint). Set whenever the exporters change.
    void setReaders(std::map<std::string, int> readers);

    // Held while an exporter reads a chunk of batches.
    std::unique_lock<std::mutex> lockReading() { return std::unique_lock(reading_); }

    // The records of `source` in `batch` from rowid `from` (a piece: docs/exporters.md) if another
    // exporter read them (nullptr otherwise). Each exporter of the source takes them once.
    SharedRecords take(uint64_t batch, const std::string& source, int64_t from = 0);
    // Records an exporter read: kept for the source's other exporters when the piece is newer than
    // any the feed had of that source (a laggard reading old batches again keeps them to itself).
    // `offeredBy` names the exporter that read them (waitForRoom()'s `caller`).
    void offer(uint64_t batch, const std::string& source, const SharedRecords& records, int64_t from = 0,
               const void* offeredBy = nullptr);
    // Called by an exporter (`caller`) before it reads batches after `after` of `sources`: waits
    // (at most `maxWait`) while the entries of sources whose exporters are still taking (one of
    // them went within kPaceMs) fill the budget. Returns at once when the feed holds a piece that
    // another exporter read of one of `sources` after `after` (the caller will take, not read),
    // or when what fills the feed waits for exporters that took nothing for kPaceMs. True if it
    // waited.
    bool waitForRoom(uint64_t after, const std::vector<std::string>& sources, const void* caller,
                     std::chrono::milliseconds maxWait);

    size_t bytes() const;
    size_t entries() const;

private:
    struct Entry {
        SharedRecords records;
        int waiting = 0;  // exporters that have not taken it yet
        size_t bytes = 0;
        const void* offeredBy = nullptr;
    };

    void evict();
    // Whether a waitForRoom() caller must wait (mutex_ held).
    bool mustWait(uint64_t after, const std::vector<std::string>& sources, const void* caller) const;
    // Whether the last exporter of `source` took one of its entries within kPaceMs (mutex_ held).
    bool moving(const std::string& source, std::chrono::steady_clock::time_point now) const;

    const size_t budget_;
    std::mutex reading_;
    mutable std::mutex mutex_;  // everything below
    // By batch, source and the first rowid of the piece.
    std::map<std::tuple<uint64_t, std::string, int64_t>, Entry> entries_;
    std::map<std::string, int> readers_;
    std::map<std::string, std::pair<uint64_t, int64_t>> newest_;  // per source: the newest piece offered
    size_t bytes_ = 0;
    // When an entry last went because the last of its exporters took it (the slowest of them
    // is moving), of any source and per source, and the signal for it (also at setReaders()).
    std::chrono::steady_clock::time_point lastRelease_{};
    std::map<std::string, std::chrono::steady_clock::time_point> sourceReleased_;
    std::condition_variable released_;
};

}  // namespace sluice::exports
