// The daemon's exporters, by name, as the configuration declares them. The main thread applies
// a configuration (at start and on SIGHUP: new exporters start, removed ones stop, changed ones
// restart; unchanged ones keep running); the writer thread reports each commit, which wakes
// every exporter (a few atomics and a notify: nothing that could slow a commit).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/spec.h"
#include "core/status.h"
#include "export/export_feed.h"
#include "export/exporter.h"
#include "privacy/key_wrap.h"

namespace sluice::exports {

// The sink an exporter spec asks for. Fails when the spec cannot work here (Kafka settings that
// librdkafka refuses, Kafka not built in).
Result<std::unique_ptr<Sink>> makeSink(const ExporterSpec& spec);

class ExportSet {
public:
    struct Options {
        std::string database;
        const privacy::KeyWrapper* wrapper = nullptr;  // outlives the set
        int nice = 0;  // of the exporter threads (Exporter::Options::nice)
        size_t pieceRows = 2000;  // Exporter::Options::pieceRows
        store::CursorMailbox* cursors = nullptr;  // Exporter::Options::cursors
        const std::atomic<int64_t>* pipelinePausedNs = nullptr;  // Exporter::Options::pipelinePausedNs
        int busyPercent = 100;                                   // Exporter::Options::busyPercent
    };

    ExportSet(Options options, uint64_t lastBatch, int64_t lastCommitMs);
    ~ExportSet();
    ExportSet(const ExportSet&) = delete;
    ExportSet& operator=(const ExportSet&) = delete;

    // Checks that every exporter of `pipeline` can be made, without starting any.
    static Status check(const PipelineSpec& pipeline);
    // Makes the running exporters those of `pipeline`. On error nothing changed.
    Status apply(const PipelinePtr& pipeline);
    // Writer thread: a batch is durable.
    void committed(uint64_t batchId, int64_t commitMs);
    // Keys were shredded (retention, or a forget the writer noticed): look at shred_log now.
    void shredded();
    // Stops every exporter (each makes durable what it wrote, and saves its cursor).
    void stopAll();

    // For metrics and status: each running exporter's name, type and counters.
    void forEach(const std::function<void(const ExporterSpec&, const ExporterStats&)>& fn) const;
    size_t size() const;

private:
    // Tells the feed how many exporters read each source (mutex_ held).
    void updateFeed();

    Options options_;
    CommitClock clock_;
    ExportFeed feed_;
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Exporter>> exporters_;
};

}  // namespace sluice::exports
