// Lines of a ByteSource for the record readers: '\n'-terminated (a '\r' before it stays part of
// the line), with their content offset and line number, a UTF-8 byte-order mark at the very
// start dropped. The bytes of a record still being read can be kept, so that a reader can go
// back to the line after a record's first line when the record turns out malformed.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "job/byte_source.h"

namespace sluice::job {

struct Line {
    std::string_view text;    // without the '\n'; valid until the next call to next()
    uint64_t offset = 0;      // of its first byte
    uint64_t number = 0;      // from 1
    bool tooLong = false;     // longer than the limit: `text` is empty and the line was skipped
    // The kept record (keepFrom) has grown past the limit: nothing was consumed, and the caller
    // must give the record up (release or rewind) before asking for the next line.
    bool recordLimit = false;
};

class LineBuffer {
public:
    LineBuffer(ByteSource& source, size_t maxLineBytes);

    // The next line, or nullopt at the end of the input.
    Result<std::optional<Line>> next();
    // Keeps every byte from `offset` on (it must not be discarded yet) until release().
    void keepFrom(uint64_t offset) { keep_ = offset; }
    void release() { keep_ = kNone; }
    // Reads again from `offset` (kept, or still buffered), which starts line `number`.
    Status rewindTo(uint64_t offset, uint64_t number);
    // Continues at `offset` of the content, which starts line `number` (a checkpoint).
    Status seek(uint64_t offset, uint64_t number);
    // The offset and number of the next line.
    uint64_t offset() const { return base_ + scan_; }
    uint64_t lineNumber() const { return number_; }
    uint64_t fileBytesRead() const { return source_.fileBytesRead(); }

private:
    static constexpr uint64_t kNone = UINT64_MAX;
    Result<bool> fill();

    ByteSource& source_;
    size_t maxLineBytes_;
    std::vector<char> buf_;
    size_t scan_ = 0;          // next unread byte in buf_
    size_t end_ = 0;           // valid bytes in buf_
    uint64_t base_ = 0;        // content offset of buf_[0]
    uint64_t number_ = 1;
    uint64_t keep_ = kNone;
    bool eof_ = false;
    bool started_ = false;
};

}  // namespace sluice::job
