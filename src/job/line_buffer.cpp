#include "job/line_buffer.h"

#include <algorithm>
#include <cstring>

namespace sluice::job {
namespace {

constexpr size_t kBlock = 256 * 1024;

}  // namespace

LineBuffer::LineBuffer(ByteSource& source, size_t maxLineBytes)
    : source_(source), maxLineBytes_(maxLineBytes), buf_(std::max(kBlock, maxLineBytes + 1) + kBlock)
{
    base_ = source.position();
}

Result<bool> LineBuffer::fill()
{
    if (eof_)
        return false;
    // Drop what is no longer needed: everything before the next line, or before the kept record.
    size_t from = scan_;
    if (keep_ != kNone && keep_ < base_ + scan_)
        from = static_cast<size_t>(keep_ - base_);
    if (from > 0) {
        std::memmove(buf_.data(), buf_.data() + from, end_ - from);
        end_ -= from;
        scan_ -= from;
        base_ += from;
    }
    if (end_ == buf_.size())
        buf_.resize(buf_.size() * 2);  // a kept record longer than the buffer (bounded by the caller)
    auto n = source_.read(buf_.data() + end_, buf_.size() - end_);
    if (!n)
        return n.status();
    if (*n == 0) {
        eof_ = true;
        return false;
    }
    end_ += *n;
    return true;
}

Result<std::optional<Line>> LineBuffer::next()
{
    if (!started_) {
        started_ = true;
        while (end_ < 3 && !eof_) {
            auto more = fill();
            if (!more)
                return more.status();
        }
        if (base_ == 0 && end_ >= 3 && std::memcmp(buf_.data(), "\xEF\xBB\xBF", 3) == 0)
            scan_ = 3;
    }
    bool skipping = false;  // inside a line longer than the limit
    while (true) {
        const char* start = buf_.data() + scan_;
        const char* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - scan_));
        if (nl) {
            const size_t length = static_cast<size_t>(nl - start);
            Line line;
            line.offset = base_ + scan_;
            line.number = number_++;
            scan_ += length + 1;
            if (skipping || length > maxLineBytes_) {
                line.tooLong = true;
                return std::optional<Line>(line);
            }
            line.text = std::string_view(start, length);
            return std::optional<Line>(line);
        }
        if (keep_ != kNone && base_ + end_ - keep_ > maxLineBytes_) {
            Line line;
            line.offset = base_ + scan_;
            line.number = number_;
            line.recordLimit = true;
            return std::optional<Line>(line);
        }
        if (end_ - scan_ > maxLineBytes_ && keep_ == kNone) {
            skipping = true;  // drop it as it comes; only its end matters
            scan_ = end_;
        }
        auto more = fill();
        if (!more)
            return more.status();
        if (!*more) {
            if (scan_ == end_ && !skipping)
                return std::optional<Line>();
            Line line;
            line.offset = base_ + scan_;
            line.number = number_++;
            const size_t length = end_ - scan_;
            scan_ = end_;
            if (skipping || length > maxLineBytes_) {
                line.tooLong = true;
                return std::optional<Line>(line);
            }
            line.text = std::string_view(buf_.data() + end_ - length, length);
            return std::optional<Line>(line);
        }
    }
}

Status LineBuffer::rewindTo(uint64_t offset, uint64_t number)
{
    if (offset < base_ || offset > base_ + end_)
        return Status::internal("line buffer: offset " + std::to_string(offset) + " is no longer buffered");
    scan_ = static_cast<size_t>(offset - base_);
    number_ = number;
    return Status::ok();
}

Status LineBuffer::seek(uint64_t offset, uint64_t number)
{
    started_ = true;
    keep_ = kNone;
    if (offset >= base_ && offset <= base_ + end_) {
        scan_ = static_cast<size_t>(offset - base_);
    } else {
        SLUICE_RETURN_IF_ERROR(source_.skipTo(offset));
        base_ = offset;
        scan_ = end_ = 0;
        eof_ = false;
    }
    number_ = number;
    return Status::ok();
}

}  // namespace sluice::job
