// Files that appear complete and durable or not at all: written under a temporary name in the
// directory of their final name, fsynced, renamed over the final name, and the directory fsynced
// (without that the rename may not survive a power cut). A crash leaves at most the temporary
// file, which its owner removes or resumes. Shared by the file exporter and batch jobs' outputs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

// fsync of the directory `dir`, so that a creation, rename or removal in it is durable.
Status syncDirectory(const std::string& dir);
// fsync of the directory holding `path` ("." for a bare file name).
Status syncDirectoryOf(const std::string& path);
// fsync of the existing file `path` (written by someone else, e.g. SQLite without syncing).
Status syncFile(const std::string& path);

// One file being written under its temporary name. Move-only; the destructor closes the file
// and leaves it in place (a job resumes it; remove() deletes it). Not thread-safe.
class DurableFile {
public:
    DurableFile() = default;
    ~DurableFile();
    DurableFile(DurableFile&& other) noexcept;
    DurableFile& operator=(DurableFile&& other) noexcept;
    DurableFile(const DurableFile&) = delete;
    DurableFile& operator=(const DurableFile&) = delete;

    // Creates or empties `path`, opened with `mode` (the umask applies). A mode without group
    // and other bits is also set on a file that already existed, so a leftover file cannot keep
    // wider permissions (key files).
    static Result<DurableFile> create(const std::string& path, mode_t mode);
    // Opens the existing `path` to write at `size`, cutting off what lies beyond (a partial file
    // resumed from its checkpoint); kCorruption when it is missing or shorter than `size`.
    static Result<DurableFile> resume(const std::string& path, mode_t mode, uint64_t size);

    // Writes all of `bytes` (short writes and EINTR retried).
    Status write(std::string_view bytes);
    // fsync of the file.
    Status sync();
    // Asks the kernel to start writing `size` bytes from `offset` to the disk, without waiting
    // for it (sync_file_range), so that a later sync() has less to wait for. A hint: nothing is
    // durable because of it, and it fails silently.
    void startWriteback(uint64_t offset, uint64_t size);
    // fsync, close, rename to `finalPath` (same file system), fsync of its directory.
    Status publish(const std::string& finalPath);
    // Closes and deletes the file (an abandoned one).
    void remove();

    bool isOpen() const { return fd_ >= 0; }
    const std::string& path() const { return path_; }

private:
    static Result<DurableFile> open(const std::string& path, int flags, mode_t mode);
    void close();

    std::string path_;
    int fd_ = -1;
};

// Renames the complete file `from` to `to` (same directory) and fsyncs the directory.
Status publishFile(const std::string& from, const std::string& to);

// Replaces `path` with `text`: `path`.tmp written with mode 0600, fsynced, renamed, directory
// fsynced.
Status writeFileAtomically(const std::string& path, std::string_view text);

}  // namespace sluice
