// A batch job as its job file describes it (docs/jobs.md), checked and with every path made
// absolute: which files to read and how, which contract applies, how a record's time and
// consent are found, and which outputs to write. loadJobFile() builds it; nothing here does I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/spec.h"
#include "job/byte_source.h"
#include "job/consent_map.h"
#include "job/record_reader.h"
#include "job/timestamp.h"

namespace sluice::job {

enum class InputFormat : uint8_t { kCsv, kJsonl };
enum class FileFormat : uint8_t { kCsv, kJsonl };

std::string_view formatName(FileFormat format);

// An input field (CSV column, JSONL key) and what becomes of it.
struct ColumnRule {
    std::string input;
    std::optional<std::string> field;  // the contract field it fills; nullopt: ignored
};

struct InputSpec {
    std::vector<std::string> patterns;  // as the job file wrote them
    std::vector<std::string> files;     // expanded (globs sorted), absolute, each once
    InputFormat format = InputFormat::kCsv;
    Compression compression = Compression::kAuto;
    CsvOptions csv;
    std::vector<ColumnRule> columns;
    uint64_t maxRowBytes = 1024 * 1024;
};

struct FileOutput {
    std::string path;  // absolute; "" when not wanted
    FileFormat format = FileFormat::kCsv;
    bool wanted() const { return !path.empty(); }
};

struct NamedOutput {
    std::string name;  // of the derived output or aggregation in the pipeline
    FileOutput file;
};

struct OutputsSpec {
    FileOutput encrypted;
    std::string keysCsv;
    std::string keysTink;
    std::vector<NamedOutput> derived;
    std::vector<NamedOutput> aggregations;
    FileOutput rejects;
    std::string database;
};

struct JobSpec {
    std::string path;             // the job file
    std::string dir;              // its directory
    std::string id;
    std::string group;
    PipelinePtr pipeline;         // the contract (the only one), derived outputs, aggregations
    std::string masterKeyFile;    // "" : the one sluiced uses (--config)
    std::string keyStore;         // the group's key store (a SQLite file)
    std::string workDir;          // checkpoints and unfinished outputs live here
    InputSpec input;
    std::string eventIdField;     // an input field used as meta.event_id; "" none
    TimestampSpec timestamp;
    ConsentSpec consent;
    OutputsSpec outputs;
    double maxRejectShare = 0.10;
    // Rows per chunk, as the job file says; 0: the default of `job run` (runChunkRows) or of
    // `--send` (its requests, and so its sequence numbers, keep the chunking they always had).
    uint32_t chunkRows = 0;
    uint32_t runChunkRows() const { return chunkRows ? chunkRows : 4096; }
    uint32_t sendChunkRows() const { return chunkRows ? chunkRows : 8192; }
    // Unwrapped data keys held in memory (about 184 bytes each), over all lanes.
    uint64_t keyCacheEntries = 100'000;
    // Keys of the days in use held in the lanes' key directories (about 56 bytes each; a day
    // in use stays whole: KeyCache::partitionByTerm).
    uint64_t keyDirectoryEntries = 150'000;
    std::string text;             // the job file, compact: part of what a checkpoint must match

    const ContractSpec& contract() const { return pipeline->contracts.front(); }
    // Every output file (data, keys, derived, aggregations, rejects, database).
    std::vector<std::string> outputPaths() const;
};

}  // namespace sluice::job
