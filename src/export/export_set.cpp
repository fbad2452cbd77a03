#include "export/export_set.h"

#include <algorithm>
#include <map>

#include "core/log.h"
#include "export/file_sink.h"
#include "export/stream_sink.h"
#ifdef SLUICE_HAVE_KAFKA
#include "export/kafka_sink.h"
#endif

namespace sluice::exports {

Result<std::unique_ptr<Sink>> makeSink(const ExporterSpec& spec)
{
    switch (spec.type) {
    case ExporterType::kFile: return std::unique_ptr<Sink>(std::make_unique<FileSink>(spec));
    case ExporterType::kStream: return std::unique_ptr<Sink>(std::make_unique<StreamSink>(spec));
    case ExporterType::kKafka:
#ifdef SLUICE_HAVE_KAFKA
    {
        auto sink = KafkaSink::create(spec);
        if (!sink)
            return sink.status();
        return std::unique_ptr<Sink>(std::move(*sink));
    }
#else
        return Status::invalid(spec.path + ": type: this sluice was built without Kafka support");
#endif
    }
    return Status::internal("unknown exporter type");
}

ExportSet::ExportSet(Options options, uint64_t lastBatch, int64_t lastCommitMs) : options_(std::move(options))
{
    clock_.lastBatch.store(lastBatch);
    clock_.lastCommitMs.store(lastCommitMs);
}

ExportSet::~ExportSet()
{
    stopAll();
}

Status ExportSet::check(const PipelineSpec& pipeline)
{
    for (const ExporterSpec& spec : pipeline.exporters) {
        auto sink = makeSink(spec);
        if (!sink)
            return sink.status();
    }
    return Status::ok();
}

Status ExportSet::apply(const PipelinePtr& pipeline)
{
    // Make every new or changed exporter's sink first, so that a refusal changes nothing.
    std::vector<std::unique_ptr<Exporter>> made;
    std::vector<std::string> keep;
    {
        std::lock_guard lock(mutex_);
        for (const ExporterSpec& spec : pipeline->exporters) {
            auto running = std::find_if(exporters_.begin(), exporters_.end(), [&](const auto& e) {
                return e->name() == spec.name && e->spec().definition == spec.definition &&
                       e->spec().directory == spec.directory;
            });
            if (running != exporters_.end()) {
                keep.push_back(spec.name);
                continue;
            }
            auto sink = makeSink(spec);
            if (!sink)
                return sink.status();
            Exporter::Options o;
            o.database = options_.database;
            o.spec = spec;
            o.pipeline = pipeline;
            o.wrapper = options_.wrapper;
            o.nice = options_.nice;
            o.pieceRows = options_.pieceRows;
            o.cursors = options_.cursors;
            o.pipelinePausedNs = options_.pipelinePausedNs;
            o.busyPercent = options_.busyPercent;
            o.feed = &feed_;
            made.push_back(std::make_unique<Exporter>(std::move(o), std::move(*sink), clock_));
        }
    }
    std::vector<std::unique_ptr<Exporter>> stopped;
    {
        std::lock_guard lock(mutex_);
        for (auto it = exporters_.begin(); it != exporters_.end();) {
            if (std::find(keep.begin(), keep.end(), (*it)->name()) == keep.end()) {
                stopped.push_back(std::move(*it));
                it = exporters_.erase(it);
            } else {
                ++it;
            }
        }
    }
    // Outside the lock: a stopping exporter finishes its file or flushes Kafka.
    for (auto& e : stopped) {
        log::notice("exporter '", e->name(), "' stops (removed or changed)");
        e->stop();
    }
    stopped.clear();
    std::lock_guard lock(mutex_);
    std::vector<Exporter*> started;
    for (auto& e : made) {
        started.push_back(e.get());
        exporters_.push_back(std::move(e));
    }
    updateFeed();
    for (Exporter* e : started)
        e->start();
    return Status::ok();
}

void ExportSet::updateFeed()
{
    std::map<std::string, int> readers;
    for (const auto& e : exporters_) {
        for (const ExportSourceSpec& s : e->spec().sources)
            ++readers[sourceFingerprint(e->pipeline(), s)];
        if (e->spec().keys)
            ++readers[kKeysFingerprint];
    }
    feed_.setReaders(std::move(readers));
}

void ExportSet::committed(uint64_t batchId, int64_t commitMs)
{
    clock_.lastBatch.store(batchId, std::memory_order_relaxed);
    clock_.lastCommitMs.store(commitMs, std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    for (auto& e : exporters_)
        e->notify();
}

void ExportSet::shredded()
{
    std::lock_guard lock(mutex_);
    for (auto& e : exporters_)
        e->notify();
}

void ExportSet::stopAll()
{
    std::vector<std::unique_ptr<Exporter>> all;
    {
        std::lock_guard lock(mutex_);
        all = std::move(exporters_);
        exporters_.clear();
        updateFeed();
    }
    for (auto& e : all)
        e->stop();
}

void ExportSet::forEach(const std::function<void(const ExporterSpec&, const ExporterStats&)>& fn) const
{
    std::lock_guard lock(mutex_);
    for (const auto& e : exporters_)
        fn(e->spec(), e->stats());
}

size_t ExportSet::size() const
{
    std::lock_guard lock(mutex_);
    return exporters_.size();
}

}  // namespace sluice::exports
