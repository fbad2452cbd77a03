// Where the Transformer's parallel phases run. A phase is one run(task): task(lane) is called
// once for every lane in [0, lanes()), and run() returns when all of them have returned. The
// daemon and `sluicectl job` use a WorkerPool (one lane per core); tests and small jobs run
// inline. Each lane owns one shard of the data keys, so the number of lanes must not change
// while a Transformer uses the executor.
#pragma once

#include <functional>

namespace sluice::transform {

class Executor {
public:
    virtual ~Executor() = default;
    virtual int lanes() const = 0;
    // `task` must not throw. Called from one thread at a time.
    virtual void run(const std::function<void(int lane)>& task) = 0;
};

// One lane, on the calling thread.
class InlineExecutor final : public Executor {
public:
    int lanes() const override { return 1; }
    void run(const std::function<void(int lane)>& task) override { task(0); }
};

}  // namespace sluice::transform
