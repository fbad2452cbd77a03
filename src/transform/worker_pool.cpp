#include "transform/worker_pool.h"

#include <string>

#include "core/thread_name.h"

namespace sluice::transform {

WorkerPool::WorkerPool(int workers) : size_(workers < 1 ? 1 : workers)
{
    for (int i = 1; i < size_; ++i)
        threads_.emplace_back([this, i] {
            nameThisThread(("sluice-work-" + std::to_string(i)).c_str());
            loop(i);
        });
}

WorkerPool::~WorkerPool()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    start_.notify_all();
    for (auto& t : threads_)
        t.join();
}

void WorkerPool::run(const std::function<void(int)>& task)
{
    {
        std::lock_guard lock(mutex_);
        task_ = &task;
        pending_ = size_ - 1;
        ++generation_;
    }
    start_.notify_all();
    task(0);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    task_ = nullptr;
}

void WorkerPool::loop(int index)
{
    uint64_t seen = 0;
    for (;;) {
        const std::function<void(int)>* task;
        {
            std::unique_lock lock(mutex_);
            start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_)
                return;
            seen = generation_;
            task = task_;
        }
        (*task)(index);
        std::lock_guard lock(mutex_);
        if (--pending_ == 0)
            done_.notify_one();
    }
}

}  // namespace sluice::transform
