// Reads one input file into chunks of rows: CSV (RFC 4180, through libcsv) or JSON lines.
// A malformed record becomes a row with a RowProblem and reading goes on; only I/O errors and a
// file without a usable header stop a reader. Not thread-safe: the job's reader thread owns it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "job/byte_source.h"
#include "job/chunk.h"

namespace sluice::job {

struct CsvOptions {
    char delimiter = ',';
    char quote = '"';
};

class RecordReader {
public:
    virtual ~RecordReader() = default;
    // CSV: the header's column names (the first record). JSONL: empty.
    virtual Result<std::vector<std::string>> header() = 0;
    // Continues after a checkpoint (after header()).
    virtual Status seek(const InputPosition& at) = 0;
    // Appends rows to `chunk` until it holds `maxRows` rows or `maxBytes` bytes of text.
    // Returns false when the file has no more rows.
    virtual Result<bool> read(Chunk& chunk, size_t maxRows, size_t maxBytes) = 0;
    virtual InputPosition position() const = 0;
    virtual uint64_t fileBytesRead() const = 0;
};

// `maxRowBytes` bounds a record (a JSON line, a CSV record over all its lines).
std::unique_ptr<RecordReader> makeCsvReader(ByteSource& source, const CsvOptions& options, size_t maxRowBytes);
std::unique_ptr<RecordReader> makeJsonlReader(ByteSource& source, size_t maxRowBytes);

}  // namespace sluice::job
