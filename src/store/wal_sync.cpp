#include "store/wal_sync.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::store {

WalSync::WalSync(const std::string& databasePath) : walPath_(databasePath + "-wal") {}

WalSync::~WalSync()
{
    if (fd_ >= 0)
        ::close(fd_);
}

Status WalSync::sync()
{
    if (fd_ < 0) {
        fd_ = ::open(walPath_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) {
            if (errno == ENOENT)
                return Status::internal("syncing the WAL: " + walPath_ + " does not exist (nothing was committed)");
            return Status::ioError("opening " + walPath_ + " to sync it: " + std::strerror(errno));
        }
    }
    if (::fdatasync(fd_) != 0)
        return Status::ioError("syncing " + walPath_ + ": " + std::strerror(errno));
    return Status::ok();
}

}  // namespace sluice::store
