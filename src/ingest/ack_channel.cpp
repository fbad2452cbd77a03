#include "ingest/ack_channel.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

namespace sluice::ingest {

AckChannel::AckChannel() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))
{
    if (fd_ < 0)
        throw std::runtime_error("eventfd failed");  // startup only
}

AckChannel::~AckChannel()
{
    if (fd_ >= 0)
        ::close(fd_);
}

void AckChannel::wake()
{
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);  // EAGAIN: already readable
}

void AckChannel::push(AckBatch&& batch)
{
    {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(batch));
    }
    wake();
}

void AckChannel::close()
{
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    wake();
}

std::vector<AckBatch> AckChannel::takeAll(bool* closed)
{
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(fd_, &count, sizeof count);  // reset readiness first
    std::lock_guard lock(mutex_);
    std::vector<AckBatch> out(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.clear();
    if (closed)
        *closed = closed_;
    return out;
}

}  // namespace sluice::ingest
