// CSV records through libcsv, fed one physical line at a time so that the reader always knows
// where a record started: a malformed record (libcsv's strict mode reports a quote out of
// place; a quoted field still open at the end of the file or after max_row_bytes) becomes one
// rejected row, and parsing starts again on the line after that record's first line.
// A line that is a whole record of plain and simply quoted fields (most lines of most files) is
// split by the reader itself (splitPlainLine), with the cells libcsv would give; libcsv's
// callbacks per byte were the reader's largest cost.
#include <csv.h>

#include <cstring>

#include "job/line_buffer.h"
#include "job/record_reader.h"

namespace sluice::job {
namespace {

// libcsv: only '\n' ends a record; '\r' counts as "space", which libcsv drops around unquoted
// fields and after a closing quote, so CRLF and LF files read alike. Blanks are data (RFC 4180).
int isTerm(unsigned char c) { return c == '\n'; }
int isSpace(unsigned char c) { return c == '\r'; }

// libcsv's parser states (libcsv.c); ROW_NOT_BEGUN means no record is open.
constexpr int kRowNotBegun = 0;

class CsvReader final : public RecordReader {
public:
    CsvReader(ByteSource& source, const CsvOptions& options, size_t maxRowBytes)
        : lines_(source, maxRowBytes), options_(options), maxRowBytes_(maxRowBytes)
    {
        init();
    }
    ~CsvReader() override { csv_free(&parser_); }

    Result<std::vector<std::string>> header() override
    {
        Chunk chunk;
        columns_ = 0;  // any count
        while (chunk.rows.empty()) {
            auto more = read(chunk, 1, SIZE_MAX);
            if (!more)
                return more.status();
            if (chunk.rows.empty() && !*more)
                return Status::invalid("the file is empty: a CSV input starts with a header row");
        }
        const RawRow& row = chunk.rows.front();
        if (row.problem != RowProblem::kNone)
            return Status::invalid("the header row (line " + std::to_string(row.line) + ") is not valid CSV");
        std::vector<std::string> names;
        for (uint32_t c = 0; c < row.cellCount; ++c) {
            const auto [offset, size] = chunk.cells[row.firstCell + c];
            names.emplace_back(chunk.text.data() + offset, size);
        }
        columns_ = names.size();
        rows_ = 0;  // the header is not a data row
        return names;
    }

    Status seek(const InputPosition& at) override
    {
        csv_free(&parser_);
        init();
        rows_ = at.rows;
        return lines_.seek(at.offset, at.line);
    }

    InputPosition position() const override { return {lines_.offset(), lines_.lineNumber(), rows_}; }
    uint64_t fileBytesRead() const override { return lines_.fileBytesRead(); }

    Result<bool> read(Chunk& chunk, size_t maxRows, size_t maxBytes) override
    {
        chunk_ = &chunk;
        while (chunk.rows.size() < maxRows && chunk.text.size() < maxBytes) {
            auto line = lines_.next();
            if (!line)
                return line.status();
            if (!*line) {
                // The end: a record still open is finished (or found malformed) by csv_fini.
                if (open_) {
                    const size_t before = chunk.rows.size();
                    if (csv_fini(&parser_, onCell, onRow, this) != 0) {
                        SLUICE_RETURN_IF_ERROR(giveUp(RowProblem::kBadQuote));
                        continue;
                    }
                    if (chunk.rows.size() == before)
                        endRecord();
                }
                chunk.end = position();
                chunk.fileBytesRead = fileBytesRead();
                return false;
            }
            const Line& l = **line;
            if (l.recordLimit) {
                SLUICE_RETURN_IF_ERROR(giveUp(parser_.quoted ? RowProblem::kBadQuote : RowProblem::kTooLarge));
                continue;
            }
            if (!open_) {
                recordOffset_ = l.offset;
                recordLine_ = l.number;
                rowTextStart_ = chunk.text.size();
                rowCellStart_ = chunk.cells.size();
            }
            if (l.tooLong) {
                SLUICE_RETURN_IF_ERROR(giveUp(open_ && parser_.quoted ? RowProblem::kBadQuote : RowProblem::kTooLarge));
                continue;
            }
            if (!open_) {
                if (splitPlainLine(l.text)) {
                    endRecord();
                    continue;
                }
                lines_.keepFrom(l.offset);
            }
            open_ = true;
            const size_t n = l.text.size();
            const size_t rowsBefore = chunk.rows.size();
            if (csv_parse(&parser_, l.text.data(), n, onCell, onRow, this) != n ||
                csv_parse(&parser_, "\n", 1, onCell, onRow, this) != 1) {
                SLUICE_RETURN_IF_ERROR(giveUp(RowProblem::kBadQuote));
                continue;
            }
            if (chunk.rows.size() > rowsBefore || parser_.pstate == kRowNotBegun) {
                // A record ended on this line, or the line was blank (no record at all).
                if (chunk.rows.size() == rowsBefore)
                    dropPartial();
                open_ = false;
                lines_.release();
            } else if (l.offset + n - recordOffset_ > maxRowBytes_) {
                SLUICE_RETURN_IF_ERROR(giveUp(parser_.quoted ? RowProblem::kBadQuote : RowProblem::kTooLarge));
            }
        }
        chunk.end = position();
        chunk.fileBytesRead = fileBytesRead();
        return true;
    }

private:
    void init()
    {
        csv_init(&parser_, CSV_STRICT | CSV_STRICT_FINI);
        csv_set_delim(&parser_, static_cast<unsigned char>(options_.delimiter));
        csv_set_quote(&parser_, static_cast<unsigned char>(options_.quote));
        csv_set_term_func(&parser_, isTerm);
        csv_set_space_func(&parser_, isSpace);
        open_ = false;
        plainLines_ = options_.delimiter != options_.quote && !isTerm(static_cast<unsigned char>(options_.delimiter)) &&
                      !isSpace(static_cast<unsigned char>(options_.delimiter)) &&
                      !isTerm(static_cast<unsigned char>(options_.quote)) &&
                      !isSpace(static_cast<unsigned char>(options_.quote));
    }

    // The common case without libcsv's per-byte callbacks: a line that is a whole record, no
    // '\r' in it (the only byte libcsv would drop) and every field either unquoted without a
    // quote or quoted from its first byte to a closing quote right before a delimiter or the end.
    // Its cells are exactly those libcsv would give. Anything else (a quoted field that goes on
    // past the line, a quote out of place, a blank line) leaves nothing behind and returns
    // false: libcsv reads the line, and finds the error if there is one.
    bool splitPlainLine(std::string_view line)
    {
        if (!plainLines_ || line.empty() || std::memchr(line.data(), '\r', line.size()))
            return false;
        Chunk& c = *chunk_;
        const char delimiter = options_.delimiter;
        const char quote = options_.quote;
        const char* p = line.data();
        const char* const end = p + line.size();
        auto giveBack = [&] {
            c.text.resize(rowTextStart_);
            c.cells.resize(rowCellStart_);
            return false;
        };
        while (true) {
            if (p < end && *p == quote) {
                const size_t offset = c.text.size();
                ++p;
                while (true) {
                    const auto* q = static_cast<const char*>(std::memchr(p, quote, static_cast<size_t>(end - p)));
                    if (!q)
                        return giveBack();  // the record goes on on the next line
                    c.text.append(p, static_cast<size_t>(q - p));
                    if (q + 1 < end && q[1] == quote) {  // "" inside quotes: one quote
                        c.text += quote;
                        p = q + 2;
                        continue;
                    }
                    p = q + 1;
                    break;
                }
                c.cells.emplace_back(static_cast<uint32_t>(offset), static_cast<uint32_t>(c.text.size() - offset));
                if (p == end)
                    return true;
                if (*p != delimiter)
                    return giveBack();
                ++p;
                continue;
            }
            const auto* d = static_cast<const char*>(std::memchr(p, delimiter, static_cast<size_t>(end - p)));
            const char* fieldEnd = d ? d : end;
            const auto size = static_cast<size_t>(fieldEnd - p);
            if (std::memchr(p, quote, size))
                return giveBack();
            c.cells.emplace_back(static_cast<uint32_t>(c.text.size()), static_cast<uint32_t>(size));
            c.text.append(p, size);
            if (!d)
                return true;
            p = d + 1;
        }
    }

    static void onCell(void* data, size_t size, void* self)
    {
        auto& r = *static_cast<CsvReader*>(self);
        Chunk& c = *r.chunk_;
        c.cells.emplace_back(static_cast<uint32_t>(c.text.size()), static_cast<uint32_t>(size));
        if (size)
            c.text.append(static_cast<const char*>(data), size);
    }

    static void onRow(int, void* self) { static_cast<CsvReader*>(self)->endRecord(); }

    void endRecord()
    {
        Chunk& c = *chunk_;
        RawRow row;
        row.line = recordLine_;
        row.row = ++rows_;
        row.offset = static_cast<uint32_t>(rowTextStart_);
        row.size = static_cast<uint32_t>(c.text.size() - rowTextStart_);
        row.firstCell = static_cast<uint32_t>(rowCellStart_);
        row.cellCount = static_cast<uint32_t>(c.cells.size() - rowCellStart_);
        if (columns_ && row.cellCount != columns_)
            row.problem = RowProblem::kColumnCount;
        c.rows.push_back(row);
        rowTextStart_ = c.text.size();
        rowCellStart_ = c.cells.size();
    }

    void dropPartial()
    {
        chunk_->text.resize(rowTextStart_);
        chunk_->cells.resize(rowCellStart_);
    }

    // The open record is malformed: one rejected row, then parsing starts again on the line
    // after the record's first line.
    Status giveUp(RowProblem problem)
    {
        dropPartial();
        RawRow row;
        row.line = recordLine_;
        row.row = ++rows_;
        row.offset = static_cast<uint32_t>(chunk_->text.size());
        row.firstCell = static_cast<uint32_t>(chunk_->cells.size());
        row.problem = problem;
        chunk_->rows.push_back(row);
        csv_free(&parser_);
        init();
        const bool multiLine = lines_.lineNumber() > recordLine_ + 1;
        if (multiLine) {
            // Go back to the line after the record's first line (still kept in the buffer).
            SLUICE_RETURN_IF_ERROR(lines_.rewindTo(recordOffset_, recordLine_));
            lines_.release();
            auto first = lines_.next();  // the record's first line, read again and skipped
            if (!first)
                return first.status();
        }
        lines_.release();
        return Status::ok();
    }

    LineBuffer lines_;
    CsvOptions options_;
    size_t maxRowBytes_;
    csv_parser parser_{};
    Chunk* chunk_ = nullptr;
    size_t columns_ = 0;
    uint64_t rows_ = 0;
    bool open_ = false;
    bool plainLines_ = false;  // splitPlainLine applies (the delimiter and quote are ordinary bytes)
    uint64_t recordOffset_ = 0;
    uint64_t recordLine_ = 0;
    size_t rowTextStart_ = 0;
    size_t rowCellStart_ = 0;
};

}  // namespace

std::unique_ptr<RecordReader> makeCsvReader(ByteSource& source, const CsvOptions& options, size_t maxRowBytes)
{
    return std::make_unique<CsvReader>(source, options, maxRowBytes);
}

}  // namespace sluice::job
