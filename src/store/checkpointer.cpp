#include "store/checkpointer.h"

#include <sqlite3.h>

#include "core/log.h"
#include "core/thread_name.h"

namespace sluice::store {

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(const std::string& path, Db& writer, int thresholdPages,
                                                          int limitPages)
{
    Db::Options options;
    options.cacheBytes = 1024 * 1024;
    auto own = Db::open(path, options);
    if (!own)
        return own.status();
    std::unique_ptr<Checkpointer> c(new Checkpointer(std::move(*own), writer, thresholdPages, limitPages));
    sqlite3_wal_hook(writer.handle(), &Checkpointer::walHook, c.get());
    c->thread_ = std::thread([raw = c.get()] {
        nameThisThread("sluice-ckpt");
        raw->run();
    });
    return c;
}

Checkpointer::Checkpointer(Db own, Db& writer, int thresholdPages, int limitPages)
    : own_(std::move(own)), writer_(writer), thresholdPages_(thresholdPages), limitPages_(limitPages)
{
}

Checkpointer::~Checkpointer()
{
    // Back to SQLite's own automatic checkpoints for whatever the writer does from here on.
    sqlite3_wal_autocheckpoint(writer_.handle(), 1000);
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable())
        thread_.join();
}

int Checkpointer::walHook(void* self, sqlite3*, const char*, int pages)
{
    auto* c = static_cast<Checkpointer*>(self);
    c->walPages_.store(pages, std::memory_order_relaxed);
    if (pages >= c->thresholdPages_) {
        {
            std::lock_guard lock(c->mutex_);
            c->due_ = true;
        }
        c->wake_.notify_one();
    }
    return SQLITE_OK;
}

void Checkpointer::run()
{
    std::unique_lock lock(mutex_);
    while (true) {
        wake_.wait(lock, [&] { return due_ || stopping_; });
        if (stopping_)
            return;
        due_ = false;
        lock.unlock();
        int logFrames = 0, copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(own_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &logFrames, &copied);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log::warning("background checkpoint: ", own_.error(rc, "checkpoint").message());
        checkpoints_.fetch_add(1, std::memory_order_relaxed);
        lock.lock();
    }
}

Status Checkpointer::catchUp()
{
    if (walPages_.load(std::memory_order_relaxed) < limitPages_)
        return Status::ok();
    int logFrames = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(writer_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &logFrames, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return writer_.error(rc, "checkpointing the WAL");
    walPages_.store(0, std::memory_order_relaxed);
    return Status::ok();
}

}  // namespace sluice::store
