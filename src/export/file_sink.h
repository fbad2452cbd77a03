// The file exporter's sink: JSON Lines files in a directory, optionally zstd-compressed.
//
// A file covers a range of batches and is named after them and the UTC commit time of its first
// batch:   <exporter>-20251121T080000Z-000000000123-000000000130.jsonl[.zst]
// It is written under a temporary name (".<name>.tmp"), fsynced, renamed, and the directory is
// fsynced, so a reader never sees a partial file. It closes after `interval` (from its first
// batch) or after `batches` batches; an interval in which nothing was exported leaves no file.
// With keys exported, the keys of the same batches go beside it in the keyLink CSV
// (<stem>.keys.csv, renamed before the data file); shredding (forget, retention) goes to
//          <exporter>-forget-20251121T080000Z-000000000004-000000000007.jsonl
// (shred_log ids), one line per shredded key link, so downstream jobs can purge their copies.
//
// The data file is the commit point of its batches: at open() the sink deletes temporary files
// and keys files without their data file (left by a crash), and reports the last batch and
// shred id its files hold, so that the exporter continues after them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/spec.h"
#include "export/sink.h"

namespace sluice::exports {

class FileSink final : public Sink {
public:
    explicit FileSink(const ExporterSpec& spec);
    ~FileSink() override;

    Status open(SinkPosition& position) override;
    Status write(const BatchRecords& batch) override;
    Status forget(const std::vector<store::ShredEntry>& entries) override;
    Result<SinkPosition> sync(int64_t nowMs, bool force) override;
    int64_t deadlineMs() const override;
    void close() override;

    // "lake-20251121T080000Z-000000000123-000000000130.jsonl.zst" -> (123, 130); for tests too.
    struct ParsedName {
        bool forget = false;
        std::string stem;  // up to the batch range
        std::string suffix;
        uint64_t first = 0;
        uint64_t last = 0;
    };
    static bool parseName(const std::string& exporter, const std::string& file, ParsedName& out);

private:
    class Output;
    Status closeFiles();
    Status writeForgetLog();

    ExporterSpec spec_;
    SinkPosition durable_;
    uint64_t written_ = 0;         // last batch handed to write() whole (its last piece)
    bool midBatch_ = false;        // a batch's pieces are being written: the file cannot close
    std::unique_ptr<Output> data_;  // open data file, if any
    std::unique_ptr<Output> keys_;
    uint64_t firstBatch_ = 0;
    uint64_t batchesInFile_ = 0;
    int64_t fileCommitMs_ = 0;
    int64_t fileOpenedMs_ = 0;
    std::vector<store::ShredEntry> pendingForget_;
    int64_t forgetSinceMs_ = 0;
};

}  // namespace sluice::exports
