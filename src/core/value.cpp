#include "core/value.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace sluice {

namespace {

constexpr uint64_t kByteOnes = 0x0101010101010101ull;
constexpr uint64_t kByteHighs = 0x8080808080808080ull;

// True when one of the 8 bytes of `word` is one JSON escapes: below 0x20, '"' or '\\'. Exact for
// "any byte": a byte's high bit is set only by a byte that matched or by a borrow from a lower
// byte that matched (the classic "has a zero / a byte less than n" tests, n <= 128).
bool escapeInWord(uint64_t word)
{
    const uint64_t quote = word ^ (kByteOnes * '"');
    const uint64_t backslash = word ^ (kByteOnes * '\\');
    return (((word - kByteOnes * 0x20) & ~word) | ((quote - kByteOnes) & ~quote) |
            ((backslash - kByteOnes) & ~backslash)) &
           kByteHighs;
}

}  // namespace

void appendJsonString(std::string& out, std::string_view text)
{
    static constexpr char kHex[] = "0123456789abcdef";
    out.reserve(out.size() + text.size() + 2);
    out += '"';
    size_t start = 0;
    size_t i = 0;
    const size_t size = text.size();
    // Exported records are mostly Base64 ciphertexts and plain text: skip 8 bytes at a time up to
    // the next byte that needs escaping (the exporters' most expensive function, byte by byte).
    for (;;) {
        uint64_t word;
        while (i + sizeof word <= size) {
            std::memcpy(&word, text.data() + i, sizeof word);
            if (escapeInWord(word))
                break;
            i += sizeof word;
        }
        if (i >= size)
            break;
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') {
            ++i;
            continue;
        }
        out.append(text, start, i - start);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
        start = ++i;
    }
    out.append(text, start, size - start);
    out += '"';
}

void appendDouble(std::string& out, double value)
{
    if (!std::isfinite(value)) {
        out += "null";  // JSON has no NaN or infinity
        return;
    }
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, end);
}

void appendJson(std::string& out, const Value& value)
{
    switch (value.kind) {
    case ValueKind::kMissing: out += "null"; break;
    case ValueKind::kBool: out += value.b ? "true" : "false"; break;
    case ValueKind::kInt: {
        char buf[24];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value.i);
        out.append(buf, end);
        break;
    }
    case ValueKind::kReal: appendDouble(out, value.d); break;
    case ValueKind::kString: appendJsonString(out, value.text); break;
    case ValueKind::kArray:
        out += '[';
        for (size_t i = 0; i < value.items.size(); ++i) {
            if (i)
                out += ',';
            appendJson(out, value.items[i]);
        }
        out += ']';
        break;
    }
}

}  // namespace sluice
