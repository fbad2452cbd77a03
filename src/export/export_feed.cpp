#include "export/export_feed.h"

#include <algorithm>

namespace sluice::exports {

std::string sourceFingerprint(const PipelineSpec& pipeline, const ExportSourceSpec& source)
{
    std::string out;
    switch (source.kind) {
    case ExportSourceSpec::Kind::kContract:
        // A contract version never changes.
        return "contract " + source.name;
    case ExportSourceSpec::Kind::kOutput: {
        out = "output " + source.name;
        auto o = std::find_if(pipeline.outputs.begin(), pipeline.outputs.end(),
                              [&](const OutputSpec& x) { return x.name == source.name; });
        if (o != pipeline.outputs.end()) {
            out += " of " + o->contract + " masking";
            for (const std::string& f : o->maskedFields)
                out += " " + f;
        }
        return out;
    }
    case ExportSourceSpec::Kind::kAggregation: {
        out = "aggregation " + source.name;
        auto a = std::find_if(pipeline.aggregations.begin(), pipeline.aggregations.end(),
                              [&](const AggregationSpec& x) { return x.name == source.name; });
        if (a != pipeline.aggregations.end()) {
            out += " by";
            for (const std::string& g : a->groupBy)
                out += " " + g;
        }
        return out;
    }
    }
    return out;
}

ExportFeed::ExportFeed(size_t budgetBytes) : budget_(budgetBytes) {}

void ExportFeed::setReaders(std::map<std::string, int> readers)
{
    std::lock_guard lock(mutex_);
    readers_ = std::move(readers);
    // Who waits for what changed: start again (reloads are rare; the exporters read what they miss).
    entries_.clear();
    bytes_ = 0;
    sourceReleased_.clear();
    released_.notify_all();
}

SharedRecords ExportFeed::take(uint64_t batch, const std::string& source, int64_t from)
{
    std::lock_guard lock(mutex_);
    auto it = entries_.find({batch, source, from});
    if (it == entries_.end())
        return nullptr;
    SharedRecords records = it->second.records;
    if (--it->second.waiting <= 0) {
        bytes_ -= it->second.bytes;
        entries_.erase(it);
        // The last of its exporters took it: the slowest of that source's exporters is moving.
        lastRelease_ = std::chrono::steady_clock::now();
        sourceReleased_[source] = lastRelease_;
        released_.notify_all();
    }
    return records;
}

void ExportFeed::offer(uint64_t batch, const std::string& source, const SharedRecords& records, int64_t from,
                       const void* offeredBy)
{
    std::lock_guard lock(mutex_);
    auto& newest = newest_[source];
    if (std::make_pair(batch, from) <= newest)
        return;
    newest = {batch, from};
    auto r = readers_.find(source);
    const int others = (r == readers_.end() ? 0 : r->second) - 1;
    if (others <= 0)
        return;
    Entry e;
    e.records = records;
    e.waiting = others;
    e.bytes = records->bytes();
    e.offeredBy = offeredBy;
    bytes_ += e.bytes;
    entries_[{batch, source, from}] = std::move(e);
    evict();
}

bool ExportFeed::moving(const std::string& source, std::chrono::steady_clock::time_point now) const
{
    auto it = sourceReleased_.find(source);
    return it != sourceReleased_.end() && now - it->second < kPaceMs;
}

bool ExportFeed::mustWait(uint64_t after, const std::vector<std::string>& sources, const void* caller) const
{
    const auto now = std::chrono::steady_clock::now();
    if (bytes_ < budget_ || now - lastRelease_ >= kPaceMs)
        return false;
    // Only what exporters that are still taking will free is worth waiting for: the entries of a
    // source whose slowest exporter is down stay until evict() drops them, whoever waits.
    size_t freeing = 0;
    for (const auto& [key, entry] : entries_) {
        const std::string& source = std::get<1>(key);
        // The caller takes what another exporter read (not what it offered itself: inside a
        // batch, its own pieces of that batch are after `after` too).
        if (std::get<0>(key) > after && entry.offeredBy != caller &&
            std::find(sources.begin(), sources.end(), source) != sources.end())
            return false;
        if (moving(source, now))
            freeing += entry.bytes;
    }
    return freeing >= budget_;
}

bool ExportFeed::waitForRoom(uint64_t after, const std::vector<std::string>& sources, const void* caller,
                             std::chrono::milliseconds maxWait)
{
    std::unique_lock lock(mutex_);
    if (!mustWait(after, sources, caller))
        return false;
    const auto until = std::chrono::steady_clock::now() + maxWait;
    while (mustWait(after, sources, caller)) {
        // Woken when an entry goes; also when the pace runs out with none going.
        const auto paceEnd = lastRelease_ + kPaceMs;
        if (released_.wait_until(lock, std::min(until, paceEnd)) == std::cv_status::timeout &&
            std::chrono::steady_clock::now() >= until)
            break;
    }
    return true;
}

void ExportFeed::evict()
{
    // While the others are taking, the exporters ahead wait for room (waitForRoom()): the feed
    // goes past its budget by what they read before they noticed, and only twice the budget is
    // cut. When nobody is taking, what is beyond the budget goes. First the entries of sources
    // nobody is taking (a sink that is down), then the oldest batches: the exporters still
    // waiting for them lag anyway.
    const auto now = std::chrono::steady_clock::now();
    for (auto it = entries_.begin(); it != entries_.end() && bytes_ > budget_;) {
        if (moving(std::get<1>(it->first), now)) {
            ++it;
            continue;
        }
        bytes_ -= it->second.bytes;
        it = entries_.erase(it);
    }
    const bool taking = now - lastRelease_ < kPaceMs;
    const size_t limit = taking ? 2 * budget_ : budget_;
    while (bytes_ > limit && !entries_.empty()) {
        bytes_ -= entries_.begin()->second.bytes;
        entries_.erase(entries_.begin());
    }
}

size_t ExportFeed::bytes() const
{
    std::lock_guard lock(mutex_);
    return bytes_;
}

size_t ExportFeed::entries() const
{
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace sluice::exports
