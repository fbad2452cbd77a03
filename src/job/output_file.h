// One output file of a job, written under a temporary name next to its final place
// (".<name>.sluice-partial" in the same directory) and published atomically at the end: fsync,
// rename over the final name, fsync of the directory (core/durable_file.h). A job that is killed
// leaves only the partial file, which the next run truncates to its last checkpoint or removes.
//
// Writes are buffered; size() counts what was handed over, flush() makes it the file's length.
// Not thread-safe: the job's writer thread owns its outputs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/durable_file.h"
#include "core/status.h"

namespace sluice::job {

// Where `finalPath` is written until it is published.
std::string partialPath(const std::string& finalPath);

class OutputFile {
public:
    OutputFile() = default;
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    // Creates (or empties) the partial file; mode 0600 when `secret` (key files), else 0644. A
    // secret file's buffer is wiped when it is written out.
    Status create(const std::string& finalPath, bool secret);
    // Opens the partial file of an interrupted run and cuts it to `size` (its checkpointed
    // length); kCorruption when it is missing or shorter than that.
    Status resume(const std::string& finalPath, bool secret, uint64_t size);

    void write(std::string_view bytes)
    {
        buffer_.append(bytes);
        size_ += bytes.size();
    }
    std::string& buffer() { return buffer_; }  // append directly, then commitBuffer()
    void commitBuffer() { size_ = written_ + buffer_.size(); }
    bool wantsFlush() const { return buffer_.size() >= kFlushBytes; }

    Status flush();
    Status sync();
    // flush, fsync, close, rename to the final name, fsync the directory.
    Status publish();

    uint64_t size() const { return size_; }
    const std::string& finalPath() const { return final_; }
    bool open() const { return file_.isOpen(); }

private:
    static constexpr size_t kFlushBytes = 1 << 20;

    std::string final_;
    DurableFile file_;  // the partial file
    bool secret_ = false;
    std::string buffer_;
    uint64_t written_ = 0;
    uint64_t size_ = 0;
};

}  // namespace sluice::job
