#include "core/value.h"

#include <charconv>
#include <cmath>

namespace sluice {

void appendJsonString(std::string& out, std::string_view text)
{
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
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
        start = i + 1;
    }
    out.append(text, start, text.size() - start);
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
