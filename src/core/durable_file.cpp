#include "core/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <utility>

namespace sluice {

namespace {

// fsync of what `path` names, opened read-only with `flags`; `what` names it in errors.
Status syncPath(const std::string& path, int flags, const std::string& what)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | flags);
    if (fd < 0)
        return errnoStatus("cannot open " + what, errno);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0)
        return errnoStatus("cannot fsync " + what, err);
    return Status::ok();
}

}  // namespace

Status syncDirectory(const std::string& dir) { return syncPath(dir, O_DIRECTORY, "the directory " + dir); }

Status syncFile(const std::string& path) { return syncPath(path, 0, path); }

Status syncDirectoryOf(const std::string& path)
{
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    return syncDirectory(parent.empty() ? std::string(".") : parent.string());
}

DurableFile::~DurableFile()
{
    close();
}

DurableFile::DurableFile(DurableFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1))
{
}

DurableFile& DurableFile::operator=(DurableFile&& other) noexcept
{
    if (this != &other) {
        close();
        path_ = std::move(other.path_);
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

void DurableFile::close()
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
}

Result<DurableFile> DurableFile::open(const std::string& path, int flags, mode_t mode)
{
    DurableFile f;
    f.path_ = path;
    f.fd_ = ::open(path.c_str(), flags | O_WRONLY | O_CLOEXEC, mode);
    if (f.fd_ < 0)
        return errnoStatus("cannot open " + path, errno);
    if ((mode & 077) == 0 && ::fchmod(f.fd_, mode) != 0)
        return errnoStatus("cannot set the mode of " + path, errno);
    return f;
}

Result<DurableFile> DurableFile::create(const std::string& path, mode_t mode)
{
    return open(path, O_CREAT | O_TRUNC, mode);
}

Result<DurableFile> DurableFile::resume(const std::string& path, mode_t mode, uint64_t size)
{
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0)
        return Status::corruption(path + " is missing");
    if (static_cast<uint64_t>(st.st_size) < size)
        return Status::corruption(path + " is shorter than its checkpoint says");
    auto f = open(path, 0, mode);
    if (!f)
        return f;
    if (::ftruncate(f->fd_, static_cast<off_t>(size)) != 0)
        return errnoStatus("cannot truncate " + path, errno);
    if (::lseek(f->fd_, static_cast<off_t>(size), SEEK_SET) < 0)
        return errnoStatus("cannot seek in " + path, errno);
    return f;
}

Status DurableFile::write(std::string_view bytes)
{
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errnoStatus("cannot write " + path_, errno);
        }
        done += static_cast<size_t>(n);
    }
    return Status::ok();
}

void DurableFile::startWriteback(uint64_t offset, uint64_t size)
{
    if (fd_ >= 0 && size > 0)
        (void)::sync_file_range(fd_, static_cast<off64_t>(offset), static_cast<off64_t>(size), SYNC_FILE_RANGE_WRITE);
}

Status DurableFile::sync()
{
    if (::fsync(fd_) != 0)
        return errnoStatus("cannot fsync " + path_, errno);
    return Status::ok();
}

Status DurableFile::publish(const std::string& finalPath)
{
    SLUICE_RETURN_IF_ERROR(sync());
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0)
        return errnoStatus("cannot close " + path_, errno);
    return publishFile(path_, finalPath);
}

void DurableFile::remove()
{
    close();
    if (!path_.empty())
        ::unlink(path_.c_str());
    path_.clear();
}

Status publishFile(const std::string& from, const std::string& to)
{
    if (::rename(from.c_str(), to.c_str()) != 0)
        return errnoStatus("cannot rename " + from + " to " + to, errno);
    return syncDirectoryOf(to);
}

Status writeFileAtomically(const std::string& path, std::string_view text)
{
    auto file = DurableFile::create(path + ".tmp", 0600);
    if (!file)
        return file.status();
    SLUICE_RETURN_IF_ERROR(file->write(text));
    return file->publish(path);
}

}  // namespace sluice
