// A fresh directory per test under the system temp dir, removed with everything in it.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace sluice::testing {

class TempDir {
public:
    explicit TempDir(const std::string& prefix = "sluice-test")
    {
        static std::atomic<unsigned> counter{0};
        const auto base = std::filesystem::temp_directory_path();
        const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
        for (int attempt = 0; attempt < 100; ++attempt) {
            path_ = base / (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(stamp) + "-" +
                            std::to_string(counter++));
            if (std::filesystem::create_directory(path_))
                return;
        }
        throw std::runtime_error("cannot create a temp directory under " + base.string());
    }
    ~TempDir()
    {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::string str() const { return path_.string(); }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

    // Writes `text` to `name` (creating parent directories) and returns the full path.
    std::string write(const std::string& name, const std::string& text) const
    {
        const auto p = path_ / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out)
            throw std::runtime_error("cannot write " + p.string());
        return p.string();
    }

private:
    std::filesystem::path path_;
};

}  // namespace sluice::testing
