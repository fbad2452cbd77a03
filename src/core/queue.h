// A bounded, blocking, multi-producer multi-consumer queue between pipeline threads.
// Bounded is the point: a full queue makes the stage before it wait, and that wait travels back
// to ingest, which stops reading, so ZeroMQ's high-water mark pushes back on producers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace sluice {

template <typename T>
class BoundedQueue {
public:
    explicit BoundedQueue(size_t capacity) : capacity_(capacity ? capacity : 1) {}

    // Blocks while full. Returns false (and drops nothing: `item` is untouched) once closed.
    bool push(T&& item)
    {
        std::unique_lock lock(mutex_);
        notFull_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
        if (closed_)
            return false;
        items_.push_back(std::move(item));
        notEmpty_.notify_one();
        return true;
    }

    bool tryPush(T&& item)
    {
        std::lock_guard lock(mutex_);
        if (closed_ || items_.size() >= capacity_)
            return false;
        items_.push_back(std::move(item));
        notEmpty_.notify_one();
        return true;
    }

    // Blocks until an item arrives, or returns nullopt once closed and empty.
    std::optional<T> pop()
    {
        std::unique_lock lock(mutex_);
        notEmpty_.wait(lock, [&] { return closed_ || !items_.empty(); });
        return takeLocked();
    }

    // As pop(), but gives up after `timeout` (returns nullopt; check closed() to tell apart).
    template <typename Rep, typename Period>
    std::optional<T> popFor(std::chrono::duration<Rep, Period> timeout)
    {
        std::unique_lock lock(mutex_);
        notEmpty_.wait_for(lock, timeout, [&] { return closed_ || !items_.empty(); });
        return takeLocked();
    }

    std::optional<T> tryPop()
    {
        std::lock_guard lock(mutex_);
        return takeLocked();
    }

    // After close(), pushes fail and pops drain what is left.
    void close()
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        notEmpty_.notify_all();
        notFull_.notify_all();
    }

    bool closed() const
    {
        std::lock_guard lock(mutex_);
        return closed_;
    }
    size_t size() const
    {
        std::lock_guard lock(mutex_);
        return items_.size();
    }
    bool full() const
    {
        std::lock_guard lock(mutex_);
        return items_.size() >= capacity_;
    }
    size_t capacity() const { return capacity_; }

private:
    std::optional<T> takeLocked()
    {
        if (items_.empty())
            return std::nullopt;
        T item = std::move(items_.front());
        items_.pop_front();
        notFull_.notify_one();
        return item;
    }

    const size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable notEmpty_;
    std::condition_variable notFull_;
    std::deque<T> items_;
    bool closed_ = false;
};

}  // namespace sluice
