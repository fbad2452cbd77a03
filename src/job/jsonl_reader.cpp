// JSON lines: one record per line; lines holding only blanks are skipped (they still count as
// lines). The JSON itself is parsed later, in parallel, by the transform's lanes.
#include "job/line_buffer.h"
#include "job/record_reader.h"

namespace sluice::job {
namespace {

bool blank(std::string_view text)
{
    for (char c : text)
        if (c != ' ' && c != '\t' && c != '\r')
            return false;
    return true;
}

class JsonlReader final : public RecordReader {
public:
    JsonlReader(ByteSource& source, size_t maxRowBytes) : lines_(source, maxRowBytes) {}

    Result<std::vector<std::string>> header() override { return std::vector<std::string>{}; }

    Status seek(const InputPosition& at) override
    {
        rows_ = at.rows;
        return lines_.seek(at.offset, at.line);
    }

    InputPosition position() const override { return {lines_.offset(), lines_.lineNumber(), rows_}; }
    uint64_t fileBytesRead() const override { return lines_.fileBytesRead(); }

    Result<bool> read(Chunk& chunk, size_t maxRows, size_t maxBytes) override
    {
        bool more = true;
        while (chunk.rows.size() < maxRows && chunk.text.size() < maxBytes) {
            auto line = lines_.next();
            if (!line)
                return line.status();
            if (!*line) {
                more = false;
                break;
            }
            const Line& l = **line;
            RawRow row;
            row.line = l.number;
            row.offset = static_cast<uint32_t>(chunk.text.size());
            if (l.tooLong) {
                row.problem = RowProblem::kTooLarge;
            } else {
                std::string_view text = l.text;
                if (!text.empty() && text.back() == '\r')
                    text.remove_suffix(1);
                if (blank(text))
                    continue;
                chunk.text.append(text);
                row.size = static_cast<uint32_t>(text.size());
            }
            row.row = ++rows_;
            chunk.rows.push_back(row);
        }
        chunk.end = position();
        chunk.fileBytesRead = fileBytesRead();
        return more;
    }

private:
    LineBuffer lines_;
    uint64_t rows_ = 0;
};

}  // namespace

std::unique_ptr<RecordReader> makeJsonlReader(ByteSource& source, size_t maxRowBytes)
{
    return std::make_unique<JsonlReader>(source, maxRowBytes);
}

}  // namespace sluice::job
