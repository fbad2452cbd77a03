#include "job/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace sluice::job {
namespace {

constexpr size_t kReadBlock = 256 * 1024;

// An open file descriptor, closed once.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    int release()
    {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }

private:
    int fd_;
};

Result<size_t> readSome(int fd, char* out, size_t size, const std::string& path)
{
    while (true) {
        const ssize_t n = ::read(fd, out, size);
        if (n >= 0)
            return static_cast<size_t>(n);
        if (errno != EINTR)
            return errnoStatus("cannot read " + path, errno);
    }
}

class PlainSource final : public ByteSource {
public:
    PlainSource(std::string path, int fd, uint64_t size) : fd_(fd)
    {
        path_ = std::move(path);
        fileSize_ = size;
    }

    Result<size_t> read(char* out, size_t size) override
    {
        auto n = readSome(fd_.get(), out, size, path_);
        if (n) {
            position_ += *n;
            fileBytesRead_ = position_;
        }
        return n;
    }

    Status skipTo(uint64_t offset) override
    {
        if (::lseek(fd_.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
            return errnoStatus("cannot seek in " + path_, errno);
        position_ = offset;
        fileBytesRead_ = offset;
        return Status::ok();
    }

private:
    Fd fd_;
};

class GzipSource final : public ByteSource {
public:
    GzipSource(std::string path, int fd, uint64_t size) : fd_(fd), in_(kReadBlock)
    {
        path_ = std::move(path);
        fileSize_ = size;
        compressed_ = true;
    }
    ~GzipSource() override
    {
        if (initialized_)
            inflateEnd(&z_);
    }

    Status init()
    {
        std::memset(&z_, 0, sizeof z_);
        // 15 + 32: a zlib or gzip header, detected; the largest window.
        if (inflateInit2(&z_, 15 + 32) != Z_OK)
            return Status::internal("zlib: inflateInit2 failed");
        initialized_ = true;
        return Status::ok();
    }

    Result<size_t> read(char* out, size_t size) override
    {
        if (finished_ || size == 0)
            return size_t{0};
        z_.next_out = reinterpret_cast<Bytef*>(out);
        z_.avail_out = static_cast<uInt>(size);
        while (z_.avail_out == size) {
            if (z_.avail_in == 0) {
                auto n = readSome(fd_.get(), in_.data(), in_.size(), path_);
                if (!n)
                    return n.status();
                if (*n == 0) {
                    if (memberOpen_)
                        return Status::corruption(path_ + ": the gzip data ends early (a truncated file?)");
                    finished_ = true;
                    break;
                }
                fileBytesRead_ += *n;
                z_.next_in = reinterpret_cast<Bytef*>(in_.data());
                z_.avail_in = static_cast<uInt>(*n);
            }
            memberOpen_ = true;
            const int rc = inflate(&z_, Z_NO_FLUSH);
            if (rc == Z_STREAM_END) {
                // Another member may follow (concatenated gzip files).
                memberOpen_ = false;
                if (inflateReset(&z_) != Z_OK)
                    return Status::internal("zlib: inflateReset failed");
                continue;
            }
            if (rc != Z_OK && rc != Z_BUF_ERROR)
                return Status::corruption(path_ + ": not valid gzip data (" + (z_.msg ? z_.msg : "zlib error") + ")");
        }
        const size_t produced = size - z_.avail_out;
        position_ += produced;
        return produced;
    }

    Status skipTo(uint64_t offset) override
    {
        std::vector<char> discard(kReadBlock);
        while (position_ < offset) {
            auto n = read(discard.data(), static_cast<size_t>(std::min<uint64_t>(discard.size(), offset - position_)));
            if (!n)
                return n.status();
            if (*n == 0)
                return Status::corruption(path_ + ": shorter than the checkpoint says (the file changed?)");
        }
        return Status::ok();
    }

private:
    Fd fd_;
    std::vector<char> in_;
    z_stream z_{};
    bool initialized_ = false;
    bool memberOpen_ = false;
    bool finished_ = false;
};

}  // namespace

Result<std::unique_ptr<ByteSource>> ByteSource::open(const std::string& path, Compression compression)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errnoStatus("cannot open " + path, errno);
    Fd guard(fd);
    struct stat st{};
    if (::fstat(fd, &st) != 0)
        return errnoStatus("cannot stat " + path, errno);
    if (!S_ISREG(st.st_mode))
        return Status::invalid(path + " is not a regular file");
    bool gzip = compression == Compression::kGzip;
    if (compression == Compression::kAuto) {
        unsigned char magic[2] = {0, 0};
        const ssize_t n = ::pread(fd, magic, 2, 0);
        if (n < 0)
            return errnoStatus("cannot read " + path, errno);
        gzip = n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    }
    const int owned = guard.release();
    if (!gzip)
        return std::unique_ptr<ByteSource>(new PlainSource(path, owned, static_cast<uint64_t>(st.st_size)));
    auto source = std::make_unique<GzipSource>(path, owned, static_cast<uint64_t>(st.st_size));
    SLUICE_RETURN_IF_ERROR(source->init());
    return std::unique_ptr<ByteSource>(std::move(source));
}

}  // namespace sluice::job
