// One input file as a stream of bytes, decompressed on the fly when it is gzip (zlib; members
// concatenated by `cat a.gz b.gz` are read one after the other). Reads sequentially with a
// fixed buffer: memory does not grow with the file.
//
// Not thread-safe: one reader thread owns it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace sluice::job {

enum class Compression : uint8_t { kAuto, kGzip, kNone };

class ByteSource {
public:
    // kAuto looks at the first two bytes (the gzip magic 1f 8b).
    static Result<std::unique_ptr<ByteSource>> open(const std::string& path, Compression compression);
    virtual ~ByteSource() = default;

    // Up to `size` bytes of content (decompressed); 0 at the end of the file.
    virtual Result<size_t> read(char* out, size_t size) = 0;
    // Moves to `offset` bytes of content from the start (forward only; a gzip file is
    // decompressed up to there).
    virtual Status skipTo(uint64_t offset) = 0;

    bool compressed() const { return compressed_; }
    // Bytes of the file itself consumed so far, and its size: the progress through it.
    uint64_t fileBytesRead() const { return fileBytesRead_; }
    uint64_t fileSize() const { return fileSize_; }
    // Bytes of content delivered so far.
    uint64_t position() const { return position_; }
    const std::string& path() const { return path_; }

protected:
    std::string path_;
    bool compressed_ = false;
    uint64_t fileBytesRead_ = 0;
    uint64_t fileSize_ = 0;
    uint64_t position_ = 0;
};

}  // namespace sluice::job
