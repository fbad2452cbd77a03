#include "job/lane_pool.h"

#include <algorithm>
#include <string>

#include "core/thread_name.h"

namespace sluice::job {

LanePool::LanePool(int threads, int lanes) : threads_(std::max(1, threads)), lanes_(std::max(lanes, threads_))
{
    for (int i = 1; i < threads_; ++i)
        workers_.emplace_back([this, i] {
            nameThisThread(("sluice-lane-" + std::to_string(i)).c_str());
            loop();
        });
}

LanePool::~LanePool()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    start_.notify_all();
    for (auto& t : workers_)
        t.join();
}

void LanePool::run(const std::function<void(int)>& task)
{
    uint32_t generation;
    {
        std::lock_guard lock(mutex_);
        generation = ++generation_;
        task_ = &task;
        finished_ = 0;
        claim_.store(static_cast<uint64_t>(generation) << 32, std::memory_order_release);
    }
    if (threads_ > 1)
        start_.notify_all();
    work(generation, task);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return finished_ == lanes_; });
    task_ = nullptr;
}

void LanePool::work(uint32_t generation, const std::function<void(int)>& task)
{
    for (;;) {
        uint64_t c = claim_.load(std::memory_order_acquire);
        int lane = -1;
        while (static_cast<uint32_t>(c >> 32) == generation && static_cast<uint32_t>(c) < static_cast<uint32_t>(lanes_)) {
            if (claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) {
                lane = static_cast<int>(static_cast<uint32_t>(c));
                break;
            }
        }
        if (lane < 0)
            return;
        // The task stays alive until every lane of its generation is finished.
        task(lane);
        std::lock_guard lock(mutex_);
        if (++finished_ == lanes_)
            done_.notify_one();
    }
}

void LanePool::loop()
{
    uint32_t seen = 0;
    for (;;) {
        const std::function<void(int)>* task;
        uint32_t generation;
        {
            std::unique_lock lock(mutex_);
            start_.wait(lock, [&] { return stopping_ || (generation_ != seen && task_ != nullptr); });
            if (stopping_)
                return;
            seen = generation = generation_;
            task = task_;
        }
        work(generation, *task);
    }
}

}  // namespace sluice::job
