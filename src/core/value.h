// A field value of a validated event. Strings and arrays point into the batch's Arena; a Value
// is a small view, valid as long as that arena.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sluice {

enum class ValueKind : uint8_t { kMissing, kBool, kInt, kReal, kString, kArray };

struct Value {
    ValueKind kind = ValueKind::kMissing;
    bool b = false;
    int64_t i = 0;
    double d = 0;
    std::string_view text;           // kString: the unescaped UTF-8
    std::span<const Value> items;    // kArray: scalar elements

    static Value ofBool(bool v) { Value x; x.kind = ValueKind::kBool; x.b = v; return x; }
    static Value ofInt(int64_t v) { Value x; x.kind = ValueKind::kInt; x.i = v; return x; }
    static Value ofReal(double v) { Value x; x.kind = ValueKind::kReal; x.d = v; return x; }
    static Value ofString(std::string_view v) { Value x; x.kind = ValueKind::kString; x.text = v; return x; }
    static Value ofArray(std::span<const Value> v) { Value x; x.kind = ValueKind::kArray; x.items = v; return x; }

    bool present() const { return kind != ValueKind::kMissing; }
    bool isNumber() const { return kind == ValueKind::kInt || kind == ValueKind::kReal; }
    double asDouble() const { return kind == ValueKind::kInt ? static_cast<double>(i) : d; }
};

// Appends `text` as a JSON string literal (quotes and escapes included).
void appendJsonString(std::string& out, std::string_view text);
// Appends a scalar or array value as compact JSON. kMissing appends null.
void appendJson(std::string& out, const Value& value);
// Shortest text that reads back as the same double ("42.5", "1e+300").
void appendDouble(std::string& out, double value);

}  // namespace sluice
