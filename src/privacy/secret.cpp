#include "privacy/secret.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/encoding.h"

namespace sluice::privacy {
namespace {

constexpr size_t kMaxSecretFileSize = 1 << 20;

std::string errnoText(int err) { return std::strerror(err); }

// Closes a descriptor on every path.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

// Hex straight into SecretBytes: core's fromHex would leave the key in a std::string that
// nobody wipes.
bool decodeHexSecret(const uint8_t* hex, size_t length, SecretBytes& out)
{
    SecretBytes bytes(length / 2);
    for (size_t i = 0; i < bytes.size(); ++i) {
        int hi = hexDigitValue(static_cast<char>(hex[2 * i]));
        int lo = hexDigitValue(static_cast<char>(hex[2 * i + 1]));
        if (hi < 0 || lo < 0)
            return false;
        bytes.data()[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    out = std::move(bytes);
    return true;
}

// Length of `content` without one trailing "\n" or "\r\n".
size_t withoutNewline(const SecretBytes& content)
{
    size_t n = content.size();
    if (n >= 1 && content.data()[n - 1] == '\n') {
        --n;
        if (n >= 1 && content.data()[n - 1] == '\r')
            --n;
    }
    return n;
}

}  // namespace

SecretBytes::SecretBytes(size_t size) : bytes_(size ? new uint8_t[size]() : nullptr), size_(size) {}

SecretBytes SecretBytes::copyOf(std::string_view bytes)
{
    return copyOf(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

SecretBytes SecretBytes::copyOf(const uint8_t* bytes, size_t size)
{
    SecretBytes out(size);
    if (size)
        std::memcpy(out.data(), bytes, size);
    return out;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : bytes_(std::move(other.bytes_)), size_(std::exchange(other.size_, 0))
{
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept
{
    if (this != &other) {
        wipe();
        bytes_ = std::move(other.bytes_);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

SecretBytes::~SecretBytes() { wipe(); }

void SecretBytes::wipe()
{
    if (bytes_ && size_)
        OPENSSL_cleanse(bytes_.get(), size_);
    bytes_.reset();
    size_ = 0;
}

void SecretBytes::truncate(size_t size)
{
    if (size >= size_)
        return;
    OPENSSL_cleanse(bytes_.get() + size, size_ - size);
    size_ = size;
}

bool secretEquals(const SecretBytes& a, const SecretBytes& b)
{
    return a.size() == b.size() && (a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0);
}

Result<SecretBytes> readSecretFile(const std::string& path, size_t expectedSize, bool allowEmpty)
{
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (fd.get() < 0) {
        int err = errno;
        if (err == ENOENT)
            return Status::notFound(path + ": secret file does not exist");
        if (err == EACCES || err == EPERM)
            return Status::permission(path + ": secret file is not readable by this user");
        return Status::ioError(path + ": cannot open secret file: " + errnoText(err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return Status::ioError(path + ": cannot stat secret file: " + errnoText(errno));
    if (!S_ISREG(st.st_mode))
        return Status::invalid(path + ": secret file is not a regular file");
    if (static_cast<uint64_t>(st.st_size) > kMaxSecretFileSize)
        return Status::invalid(path + ": secret file is larger than 1 MiB");

    // One byte more than stat says, to notice a file that grew between fstat and read.
    SecretBytes content(static_cast<size_t>(st.st_size) + 1);
    size_t got = 0;
    while (got < content.size()) {
        ssize_t n = ::read(fd.get(), content.data() + got, content.size() - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return Status::ioError(path + ": cannot read secret file: " + errnoText(errno));
        }
        if (n == 0)
            break;
        got += static_cast<size_t>(n);
    }
    if (got > static_cast<size_t>(st.st_size))
        return Status::ioError(path + ": secret file changed while it was read");
    content.truncate(got);
    if (content.empty() && !(allowEmpty && expectedSize == 0))
        return Status::invalid(path + ": secret file is empty");

    if (expectedSize == 0) {
        size_t n = withoutNewline(content);
        if (n == 0 && !content.empty() && !allowEmpty)
            return Status::invalid(path + ": secret file holds only a newline");
        content.truncate(n);
        return content;
    }

    if (content.size() == expectedSize)
        return content;
    size_t hexLength = withoutNewline(content);
    if (hexLength == 2 * expectedSize) {
        SecretBytes key;
        if (!decodeHexSecret(content.data(), hexLength, key))
            return Status::invalid(path + ": secret file has " + std::to_string(hexLength) +
                                   " characters but they are not all hex digits");
        return key;
    }
    return Status::invalid(path + ": secret file must hold " + std::to_string(expectedSize) +
                           " raw bytes or " + std::to_string(2 * expectedSize) +
                           " hex digits (and optionally a newline), but it has " +
                           std::to_string(content.size()) + " bytes");
}

Status writeNewSecretFile(const std::string& path, std::string_view bytes)
{
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600));
    if (fd.get() < 0) {
        int err = errno;
        if (err == EEXIST)
            return Status::error(StatusCode::kAlreadyExists, path + ": file already exists; not replacing it");
        return Status::ioError(path + ": cannot create secret file: " + errnoText(err));
    }
    auto fail = [&](const std::string& what) {
        int err = errno;
        ::unlink(path.c_str());
        return Status::ioError(path + ": " + what + ": " + errnoText(err));
    };
    // The umask can only clear bits, but a caller's odd umask must not widen anything either.
    if (::fchmod(fd.get(), 0600) != 0)
        return fail("cannot set mode 0600");
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail("cannot write secret file");
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0)
        return fail("cannot fsync secret file");
    if (::close(fd.release()) != 0)
        return fail("cannot close secret file");
    return Status::ok();
}

}  // namespace sluice::privacy
