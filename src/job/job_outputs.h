// The job's output files: the encrypted data, the derived outputs, the rejects and the keys are
// written chunk by chunk as the transform produces them (a key when a chunk first uses it); the
// aggregations at the end, from the job's work database. Every file is written under its partial
// name (output_file.h) and published together at the end.
//
// Formats (docs/jobs.md): CSV with a header line (RFC 4180 quoting where needed) or JSON lines.
// Data rows have the meta columns key_link, event_time (epoch ms), consent (and event_id when the
// job names one), then the contract's fields as stored: PII as Tink ciphertext in the encrypted
// data, as consent and masking allow in a derived output. Owned by the job's writer thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/commit.h"
#include "core/status.h"
#include "job/chunk.h"
#include "job/job_spec.h"
#include "job/output_file.h"
#include "job/row_parser.h"
#include "privacy/key_wrap.h"
#include "store/db.h"
#include "store/key_table.h"

namespace sluice::job {

// One line of a rejects output (docs/jobs.md): file, line, row, column, reason, message, as CSV
// (quoted where needed) or a JSON object. Never a value of the row.
void appendRejectRow(std::string& out, FileFormat format, std::string_view file, uint64_t line, uint64_t row,
                     std::string_view column, std::string_view code, std::string_view message);

class JobOutputs {
public:
    // `inputNames`: how the rejects output names each input file.
    JobOutputs(const JobSpec& job, std::vector<std::string> inputNames);

    // A fresh run: every streamed output created empty (headers written).
    Status create();
    // An interrupted run: every streamed output cut back to its checkpointed size.
    Status resume(const std::map<std::string, uint64_t>& sizes);
    // The sizes to checkpoint (after flush()).
    std::map<std::string, uint64_t> sizes() const;

    // One chunk's rows: its events and derived rows from `wb`, its rejects.
    void add(const WriteBatch& wb, const Chunk& chunk, const std::vector<RowReject>& rejects);
    Status flush();
    Status sync();

    // The keys a chunk used for the first time in the run (new ones and those of earlier runs
    // of the group), unwrapped with `wrapper`, in the keys outputs; flush() writes them out (and
    // wipes the key material from memory).
    Status addKeys(const std::vector<store::StoredKey>& keys, const privacy::KeyWrapper& wrapper);

    // At the end: the aggregations (their views, small groups hidden), read from the job's work
    // database.
    Status writeAggregations(store::Db& db);

    // Publishes every output (or only the rejects); returns the paths published.
    Result<std::vector<std::string>> publish(bool rejectsOnly);
    // The partial names of every file output (to remove them when a run starts over).
    std::vector<std::string> partialPaths() const;

private:
    struct Stream {
        FileFormat format = FileFormat::kCsv;
        OutputFile file;
        bool secret = false;
    };
    void header(Stream& s, bool withDerivedColumns);
    void row(Stream& s, const Cell* meta, const Cell* fields);
    void rejectRow(Stream& s, const Chunk& chunk, const RowReject& r);
    std::vector<Stream*> streams();

    const JobSpec& job_;
    std::vector<std::string> inputNames_;
    Stream encrypted_;
    std::deque<Stream> derived_;                        // per job.outputs.derived (Streams do not move)
    std::vector<int> derivedOf_;                        // per pipeline output: index in derived_, -1
    Stream rejects_;
    std::deque<Stream> aggregations_;
    Stream keysCsv_, keysTink_;
    std::string scratch_;
};

}  // namespace sluice::job
