// A bump allocator for the bytes of one batch: strings copied out of parser buffers, ciphertexts,
// serialized arrays. Everything is freed at once when the batch is done. Move-only; one thread
// writes to an arena at a time.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sluice {

class Arena {
public:
    explicit Arena(size_t chunkSize = 64 * 1024) : chunkSize_(chunkSize) {}
    Arena(Arena&&) noexcept = default;
    Arena& operator=(Arena&&) noexcept = default;
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

    char* allocate(size_t size, size_t align = 1)
    {
        size_t offset = (used_ + align - 1) & ~(align - 1);
        if (chunks_.empty() || offset + size > capacity_) {
            nextChunk(size + align);
            offset = (used_ + align - 1) & ~(align - 1);
        }
        char* p = chunks_[current_].data.get() + offset;
        used_ = offset + size;
        bytes_ += size;
        return p;
    }

    std::string_view copy(std::string_view text)
    {
        if (text.empty())
            return {};
        char* p = allocate(text.size());
        std::memcpy(p, text.data(), text.size());
        return {p, text.size()};
    }

    template <typename T>
    std::span<T> allocateArray(size_t n)
    {
        static_assert(std::is_trivially_destructible_v<T>);
        if (n == 0)
            return {};
        T* p = reinterpret_cast<T*>(allocate(sizeof(T) * n, alignof(T)));
        for (size_t i = 0; i < n; ++i)
            new (p + i) T();
        return {p, n};
    }

    // Bytes handed out so far (a measure of the batch's transformed size).
    size_t bytes() const { return bytes_; }

    // Forgets everything handed out but keeps the memory, for the next batch.
    void rewind()
    {
        current_ = 0;
        used_ = 0;
        bytes_ = 0;
        capacity_ = chunks_.empty() ? 0 : chunks_[0].size;
    }

private:
    struct Chunk {
        std::unique_ptr<char[]> data;
        size_t size = 0;
    };

    void nextChunk(size_t atLeast)
    {
        // Reuse the following chunk when a rewound arena has one that is large enough.
        while (!chunks_.empty() && current_ + 1 < chunks_.size()) {
            ++current_;
            if (chunks_[current_].size >= atLeast) {
                capacity_ = chunks_[current_].size;
                used_ = 0;
                return;
            }
        }
        size_t size = atLeast > chunkSize_ ? atLeast : chunkSize_;
        chunks_.push_back(Chunk{std::make_unique_for_overwrite<char[]>(size), size});
        current_ = chunks_.size() - 1;
        capacity_ = size;
        used_ = 0;
    }

    size_t chunkSize_;
    std::vector<Chunk> chunks_;
    size_t current_ = 0;
    size_t capacity_ = 0;
    size_t used_ = 0;
    size_t bytes_ = 0;
};

}  // namespace sluice
