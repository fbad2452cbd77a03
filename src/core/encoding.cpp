#include "core/encoding.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace sluice {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> makeBase64Table()
{
    std::array<int8_t, 256> t{};
    for (auto& v : t)
        v = -1;
    for (int i = 0; i < 64; ++i)
        t[static_cast<unsigned char>(kBase64Alphabet[i])] = static_cast<int8_t>(i);
    return t;
}
constexpr auto kBase64Table = makeBase64Table();

// The two Base64 characters of every 12-bit value: a 3-byte group is two lookups and one 4-byte
// store instead of four lookups and four 1-byte stores (every encrypted value of the daemon and
// of a job is Base64; the byte-wise loop was 3% of a job's CPU).
constexpr std::array<std::array<char, 2>, 4096> makeBase64Pairs()
{
    std::array<std::array<char, 2>, 4096> t{};
    for (int i = 0; i < 4096; ++i)
        t[static_cast<size_t>(i)] = {kBase64Alphabet[i >> 6], kBase64Alphabet[i & 63]};
    return t;
}
constexpr auto kBase64Pairs = makeBase64Pairs();

}  // namespace

int hexDigitValue(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void appendHex(std::string& out, std::string_view bytes)
{
    for (unsigned char c : bytes) {
        out += kHexDigits[c >> 4];
        out += kHexDigits[c & 15];
    }
}

std::string toHex(std::string_view bytes)
{
    std::string out;
    out.reserve(bytes.size() * 2);
    appendHex(out, bytes);
    return out;
}

std::optional<std::string> fromHex(std::string_view hex)
{
    if (hex.size() % 2)
        return std::nullopt;
    std::string out;
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
        int hi = hexDigitValue(hex[i]);
        int lo = hexDigitValue(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        out += static_cast<char>(hi << 4 | lo);
    }
    return out;
}

size_t base64Length(size_t bytes) { return (bytes + 2) / 3 * 4; }

void encodeBase64(char* out, std::string_view bytes)
{
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    size_t n = bytes.size();
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
        char quad[4];
        std::memcpy(quad, kBase64Pairs[v >> 12].data(), 2);
        std::memcpy(quad + 2, kBase64Pairs[v & 4095].data(), 2);
        std::memcpy(out, quad, 4);
        out += 4;
    }
    if (n - i == 1) {
        uint32_t v = uint32_t(p[i]) << 16;
        *out++ = kBase64Alphabet[v >> 18];
        *out++ = kBase64Alphabet[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8;
        *out++ = kBase64Alphabet[v >> 18];
        *out++ = kBase64Alphabet[(v >> 12) & 63];
        *out++ = kBase64Alphabet[(v >> 6) & 63];
        *out++ = '=';
    }
}

void appendBase64(std::string& out, std::string_view bytes)
{
    size_t at = out.size();
    out.resize(at + base64Length(bytes.size()));
    encodeBase64(out.data() + at, bytes);
}

std::string toBase64(std::string_view bytes)
{
    std::string out;
    appendBase64(out, bytes);
    return out;
}

std::optional<std::string> fromBase64(std::string_view text)
{
    if (text.size() % 4)
        return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; ++k) {
            char c = text[i + k];
            if (c == '=') {
                // Padding only in the last quantum, only in its last two places, and only at the end.
                if (i + 4 != text.size() || k < 2)
                    return std::nullopt;
                ++pad;
                v[k] = 0;
                continue;
            }
            if (pad)
                return std::nullopt;
            v[k] = kBase64Table[static_cast<unsigned char>(c)];
            if (v[k] < 0)
                return std::nullopt;
        }
        uint32_t word = uint32_t(v[0]) << 18 | uint32_t(v[1]) << 12 | uint32_t(v[2]) << 6 | uint32_t(v[3]);
        out += static_cast<char>(word >> 16);
        if (pad < 2)
            out += static_cast<char>((word >> 8) & 0xff);
        if (pad < 1)
            out += static_cast<char>(word & 0xff);
    }
    return out;
}


namespace {
constexpr char kZ85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
}

std::string toZ85(std::string_view bytes)
{
    std::string out;
    out.reserve(bytes.size() / 4 * 5);
    for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
        uint32_t v = 0;
        for (size_t j = 0; j < 4; ++j)
            v = v * 256 + static_cast<uint8_t>(bytes[i + j]);
        char chunk[5];
        for (int j = 4; j >= 0; --j) {
            chunk[j] = kZ85[v % 85];
            v /= 85;
        }
        out.append(chunk, 5);
    }
    return out;
}

std::optional<std::string> fromZ85(std::string_view text)
{
    if (text.size() % 5 != 0)
        return std::nullopt;
    std::string out;
    out.reserve(text.size() / 5 * 4);
    for (size_t i = 0; i < text.size(); i += 5) {
        uint64_t v = 0;
        for (size_t j = 0; j < 5; ++j) {
            const char* at = std::strchr(kZ85, text[i + j]);
            if (text[i + j] == '\0' || !at)
                return std::nullopt;
            v = v * 85 + static_cast<uint64_t>(at - kZ85);
        }
        if (v > 0xffffffffull)
            return std::nullopt;
        for (int shift = 24; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((v >> shift) & 0xff));
    }
    return out;
}

std::optional<std::string> curveKeyFromText(std::string_view text)
{
    std::optional<std::string> key;
    if (text.size() == 40)
        key = fromZ85(text);
    else if (text.size() == 64)
        key = fromHex(text);
    if (key && key->size() != 32)
        key.reset();
    return key;
}

}  // namespace sluice
