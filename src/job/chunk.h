// A chunk of input rows as a reader hands it to the transform: the raw text of each row (a
// JSONL line, or a CSV record's unescaped cells) in one buffer, and where each row came from.
// A job holds a few chunks at a time, whatever the size of its files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sluice::job {

struct InputLayout;

// Why a reader could not make a row of a record (the transform never sees such a row).
enum class RowProblem : uint8_t {
    kNone,
    kBadQuote,         // a quoted field not closed, or a quote where RFC 4180 allows none
    kColumnCount,      // more or fewer cells than the header names
    kTooLarge,         // longer than input.max_row_bytes
};

struct RawRow {
    uint64_t line = 0;        // physical line where the record starts, from 1 (the header is line 1)
    uint64_t row = 0;         // record number among the data rows, from 1
    uint32_t offset = 0;      // the row's bytes in Chunk::text: a JSONL line, or a CSV row's cells
    uint32_t size = 0;
    uint32_t firstCell = 0;   // CSV: index into Chunk::cells
    uint32_t cellCount = 0;
    RowProblem problem = RowProblem::kNone;
};

// Where reading continues: the content offset of the next record, its line and the data rows
// read before it. Stored in checkpoints.
struct InputPosition {
    uint64_t offset = 0;
    uint64_t line = 1;
    uint64_t rows = 0;
};

struct Chunk {
    // simdjson reads up to 64 bytes past the end of what it parses; `text` keeps that much
    // readable after its last row.
    static constexpr size_t kPadding = 64;

    uint32_t file = 0;        // index among the job's inputs
    std::shared_ptr<const InputLayout> layout;  // how its rows map onto the contract
    std::string text;
    std::vector<std::pair<uint32_t, uint32_t>> cells;  // (offset, size) in text
    std::vector<RawRow> rows;
    InputPosition end;        // after the last row
    uint64_t fileBytesRead = 0;
    bool lastOfFile = false;

    void clear()
    {
        text.clear();
        cells.clear();
        rows.clear();
        lastOfFile = false;
    }
    // Appends the padding once all rows are in.
    void seal() { text.append(kPadding, '\0'); }
};

}  // namespace sluice::job
