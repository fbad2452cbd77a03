#include "job/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace sluice::job {
namespace {

namespace fs = std::filesystem;

}  // namespace

std::string partialPath(const std::string& finalPath)
{
    const fs::path p(finalPath);
    std::string name = ".";  // built by appends: g++ 12 warns (-Wrestrict) about "." + string
    name += p.filename().string();
    name += ".sluice-partial";
    return (p.parent_path() / name).string();
}

Status syncDirectoryOf(const std::string& path)
{
    const fs::path parent = fs::path(path).parent_path();
    const std::string dir = parent.empty() ? std::string(".") : parent.string();
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errnoStatus("cannot open the directory " + dir, errno);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0)
        return errnoStatus("cannot fsync the directory " + dir, err);
    return Status::ok();
}

OutputFile::~OutputFile()
{
    if (fd_ >= 0)
        ::close(fd_);
}

Status OutputFile::openPartial(bool truncate, bool secret)
{
    const int flags = O_WRONLY | O_CLOEXEC | (truncate ? O_CREAT | O_TRUNC : 0);
    fd_ = ::open(partial_.c_str(), flags, secret ? 0600 : 0644);
    if (fd_ < 0)
        return errnoStatus("cannot open " + partial_, errno);
    if (secret && ::fchmod(fd_, 0600) != 0)
        return errnoStatus("cannot set the mode of " + partial_, errno);
    return Status::ok();
}

Status OutputFile::create(const std::string& finalPath, bool secret)
{
    final_ = finalPath;
    partial_ = partialPath(finalPath);
    std::error_code ec;
    fs::create_directories(fs::path(finalPath).parent_path(), ec);
    if (ec)
        return Status::ioError("cannot create the directory of " + finalPath + ": " + ec.message());
    SLUICE_RETURN_IF_ERROR(openPartial(true, secret));
    written_ = size_ = 0;
    buffer_.clear();
    return syncDirectoryOf(partial_);
}

Status OutputFile::resume(const std::string& finalPath, bool secret, uint64_t size)
{
    final_ = finalPath;
    partial_ = partialPath(finalPath);
    struct stat st{};
    if (::stat(partial_.c_str(), &st) != 0)
        return Status::corruption(partial_ + " is missing");
    if (static_cast<uint64_t>(st.st_size) < size)
        return Status::corruption(partial_ + " is shorter than its checkpoint says");
    SLUICE_RETURN_IF_ERROR(openPartial(false, secret));
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
        return errnoStatus("cannot truncate " + partial_, errno);
    if (::lseek(fd_, static_cast<off_t>(size), SEEK_SET) < 0)
        return errnoStatus("cannot seek in " + partial_, errno);
    written_ = size_ = size;
    buffer_.clear();
    return Status::ok();
}

Status OutputFile::flush()
{
    size_t done = 0;
    while (done < buffer_.size()) {
        const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errnoStatus("cannot write " + partial_, errno);
        }
        done += static_cast<size_t>(n);
    }
    written_ += buffer_.size();
    buffer_.clear();
    return Status::ok();
}

Status OutputFile::sync()
{
    SLUICE_RETURN_IF_ERROR(flush());
    if (::fsync(fd_) != 0)
        return errnoStatus("cannot fsync " + partial_, errno);
    return Status::ok();
}

Status OutputFile::publish()
{
    SLUICE_RETURN_IF_ERROR(sync());
    ::close(fd_);
    fd_ = -1;
    return publishFile(partial_, final_);
}

Status publishFile(const std::string& from, const std::string& to)
{
    if (::rename(from.c_str(), to.c_str()) != 0)
        return errnoStatus("cannot rename " + from + " to " + to, errno);
    return syncDirectoryOf(to);
}

Status writeFileAtomically(const std::string& path, const std::string& text)
{
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errnoStatus("cannot create " + tmp, errno);
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            return errnoStatus("cannot write " + tmp, err);
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        const int err = errno;
        ::close(fd);
        return errnoStatus("cannot fsync " + tmp, err);
    }
    ::close(fd);
    return publishFile(tmp, path);
}

}  // namespace sluice::job
