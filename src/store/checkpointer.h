// Keeps WAL checkpoints off the writer's commit path. The writer connection runs without
// SQLite's automatic checkpoint; a WAL hook on it reports the WAL's size after every commit, and
// once it passes `thresholdPages` this thread copies the WAL into the database (a PASSIVE
// checkpoint, on a connection of its own: it never blocks the writer or readers). The writer
// then only appends to the WAL and syncs it once per batch.
//
// A passive checkpoint that runs while the writer keeps committing cannot catch up completely,
// and SQLite only restarts a WAL that was completely copied. So the writer is asked to finish
// the job itself (catchUp()) when the WAL grows past `limitPages`: what is left to copy is
// then small.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "store/db.h"

namespace sluice::store {

class Checkpointer {
public:
    // Installs the WAL hook on `writer` (which must outlive this object) and starts the thread.
    static Result<std::unique_ptr<Checkpointer>> start(const std::string& path, Db& writer, int thresholdPages,
                                                       int limitPages);
    ~Checkpointer();
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;

    // Writer thread, before a transaction: checkpoints on the writer's connection if the WAL has
    // grown past the limit (the background thread fell behind a continuous stream of commits).
    Status catchUp();

    uint64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }

private:
    Checkpointer(Db own, Db& writer, int thresholdPages, int limitPages);
    static int walHook(void* self, struct sqlite3* db, const char* name, int pages);
    void run();

    Db own_;
    Db& writer_;
    const int thresholdPages_;
    const int limitPages_;
    std::atomic<int> walPages_{0};
    std::atomic<uint64_t> checkpoints_{0};
    std::mutex mutex_;
    std::condition_variable wake_;
    bool due_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace sluice::store
