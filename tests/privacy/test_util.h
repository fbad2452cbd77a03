// Helpers shared by the privacy tests.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "core/encoding.h"
#include "privacy/siv.h"

namespace sluice::privacy::testing {

// Hex literal to bytes; a malformed literal is a bug in the test itself.
inline std::string unhex(std::string_view hex)
{
    auto bytes = fromHex(hex);
    if (!bytes)
        throw std::invalid_argument("bad hex literal in test");
    return *bytes;
}

// A new AES-SIV cipher context; failing to make one fails the test.
inline SivCipher newCipher()
{
    auto cipher = SivCipher::create();
    REQUIRE(cipher);
    return std::move(cipher).value();
}

inline std::string randomString(std::mt19937_64& rng, size_t size)
{
    std::string out(size, '\0');
    for (char& c : out)
        c = static_cast<char>(rng() & 0xff);
    return out;
}

// A fresh directory under $TMPDIR (or /tmp), removed with its contents at scope exit.
class TempDir {
public:
    TempDir()
    {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base && *base ? base : "/tmp") + "/sluice-privacy-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir()
    {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }
    std::string write(std::string_view name, std::string_view content) const
    {
        std::string p = file(name);
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }

private:
    std::string path_;
};

}  // namespace sluice::privacy::testing
