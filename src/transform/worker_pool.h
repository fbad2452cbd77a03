// A fixed set of threads that run one task together: run(task) calls task(i) for every worker
// index i, index 0 on the calling thread, and returns when all are done. The daemon's Executor:
// each parallel phase of the Transformer is one run(). (Batch jobs, whose phases are only a few
// milliseconds long, use job::LanePool, where any free thread claims the next lane.)
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "transform/executor.h"

namespace sluice::transform {

class WorkerPool final : public Executor {
public:
    explicit WorkerPool(int workers);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    int size() const { return size_; }
    int lanes() const override { return size_; }
    // `task` must not throw.
    void run(const std::function<void(int)>& task) override;

private:
    void loop(int index);

    int size_;
    std::vector<std::thread> threads_;
    std::mutex mutex_;
    std::condition_variable start_;
    std::condition_variable done_;
    const std::function<void(int)>* task_ = nullptr;
    uint64_t generation_ = 0;
    int pending_ = 0;
    bool stopping_ = false;
};

}  // namespace sluice::transform
