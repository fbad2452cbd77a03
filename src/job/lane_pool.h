// The executor of a batch job's transform: a phase's lanes are claimed one at a time by whichever
// of the pool's threads is free, the calling thread among them, instead of lane i always running
// on thread i (transform::WorkerPool, the daemon's). A job's phases are a few milliseconds long,
// as long as a scheduler's time slice: with one lane per thread, every phase waited for a thread
// the kernel had not yet woken or had preempted for the job's writer, while the other core sat
// idle (docs/performance.md, "Batch jobs"). Here the calling thread runs lanes nobody has taken
// yet. A job runs as many lanes as threads (more lanes would make every lane read the days of
// its keys again: measured, about 5% more CPU with 4 lanes on 2 threads).
//
// A lane's state is used by one thread at a time (a lane is claimed once per phase); which
// thread that is changes from phase to phase (nothing of a lane is thread-local). run() is
// called from one thread at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "transform/executor.h"

namespace sluice::job {

class LanePool final : public transform::Executor {
public:
    // `threads` threads in all (the caller's among them), `lanes` lanes per phase (>= threads).
    LanePool(int threads, int lanes);
    ~LanePool();
    LanePool(const LanePool&) = delete;
    LanePool& operator=(const LanePool&) = delete;

    int lanes() const override { return lanes_; }
    int threads() const { return threads_; }
    // `task` must not throw.
    void run(const std::function<void(int)>& task) override;

private:
    void loop();
    // Claims and runs lanes of `generation` until none is left.
    void work(uint32_t generation, const std::function<void(int)>& task);

    int threads_;
    int lanes_;
    std::vector<std::thread> workers_;
    // The phase's generation (high 32 bits) and the next lane to claim (low 32 bits): a thread
    // that woke for an earlier phase fails to claim anything of this one.
    std::atomic<uint64_t> claim_{0};
    std::mutex mutex_;
    std::condition_variable start_;
    std::condition_variable done_;
    const std::function<void(int)>* task_ = nullptr;  // under mutex_
    uint32_t generation_ = 0;                         // under mutex_
    int finished_ = 0;                                // lanes of this phase done; under mutex_
    bool stopping_ = false;
};

}  // namespace sluice::job
