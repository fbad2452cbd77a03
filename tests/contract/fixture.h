// A contract that exercises every field type, and a helper that validates one line the way the
// pipeline does: inside a larger buffer, followed by whatever comes next and zeroed padding.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <string_view>

#include "contract/validator.h"
#include "core/arena.h"
#include "core/batch.h"
#include "core/spec.h"

namespace sluice::contract::testing {

inline constexpr const char* kRef = "t/shop/1.0.0";
inline constexpr const char* kOtherRef = "t/other/2.0.0";
inline constexpr int64_t kReceivedAt = 1'700'000'000'000;
inline constexpr int64_t kNow = 1'700'000'100'000;  // later than receipt: the two are told apart
inline constexpr int64_t kMaxFuture = 60'000;

// A value no rejection message may ever contain.
inline constexpr const char* kCanary = "CANARY-9f7c1e";

inline FieldSpec field(std::string name, FieldType type, bool array = false, bool required = false, int pii = -1,
                       std::string pattern = "", uint32_t maxLength = 0)
{
    FieldSpec f;
    f.name = std::move(name);
    f.type = type;
    f.array = array;
    f.required = required;
    f.pii = pii;
    f.pattern = std::move(pattern);
    f.maxLength = maxLength;
    return f;
}

// Field order matters: ParsedEvent::fields is indexed like this list.
enum Field : size_t {
    kSid, kEmail, kTags, kCountry, kCode, kTotal, kItems, kOk, kCounts, kRatios, kFlags, kNote, kWords, kFieldCount
};

inline ContractSpec shopContract()
{
    ContractSpec c;
    c.ref = kRef;
    c.keyField = "sid";
    c.path = "contracts/shop.json";
    c.fields = {
        field("sid", FieldType::kString, false, true, 0),
        field("email", FieldType::kString, false, false, 2, "^[^@]+@[^@]+$"),
        field("tags", FieldType::kString, true, false, 1),
        field("country", FieldType::kString, false, true, -1, "^[A-Z]{2}$"),
        field("code", FieldType::kString, false, false, -1, "ab"),  // unanchored: a search
        field("total", FieldType::kNumber, false, true),
        field("items", FieldType::kInteger),
        field("ok", FieldType::kBoolean),
        field("counts", FieldType::kInteger, true),
        field("ratios", FieldType::kNumber, true),
        field("flags", FieldType::kBoolean, true),
        field("note", FieldType::kString, false, false, -1, "", 8),
        field("words", FieldType::kString, true, false, -1, "^[a-z]+$", 4),
    };
    c.keyFieldIndex = 0;
    return c;
}

inline ContractSpec otherContract()
{
    ContractSpec c;
    c.ref = kOtherRef;
    c.keyField = "k";
    c.path = "contracts/other.json";
    c.fields = {field("k", FieldType::kString, false, true), field("n", FieldType::kInteger, false, true)};
    c.keyFieldIndex = 0;
    return c;
}

inline std::shared_ptr<const ContractSet> buildSet()
{
    auto p = std::make_shared<PipelineSpec>();
    p->contracts = {shopContract(), otherContract()};
    auto set = ContractSet::build(p);
    REQUIRE(set.isOk());
    return *set;
}

// `"meta":{...}` with the given extra meta members (already JSON, each with a leading comma).
inline std::string meta(const std::string& extra = "", const std::string& consent = "[0,1]")
{
    return std::string("\"meta\":{\"contract\":\"") + kRef + "\",\"consent\":" + consent + extra + "}";
}

// A complete valid event with the required fields; `more` is appended inside the object.
inline std::string event(const std::string& more = "", const std::string& metaExtra = "")
{
    return "{" + meta(metaExtra) + ",\"sid\":\"s-1\",\"country\":\"NL\",\"total\":42.5" + more + "}";
}

struct Outcome {
    bool ok = false;
    ParsedEvent event;
    Rejection why;
};

class Harness {
public:
    explicit Harness(Limits limits = defaultLimits()) : set_(buildSet()), validator_(set_, limits) {}

    static Limits defaultLimits()
    {
        Limits l;
        l.maxEventBytes = 4096;
        l.maxDepth = 16;
        l.maxFutureMs = kMaxFuture;
        return l;
    }

    // Validates `line` placed at the start of a buffer that continues with "\n" + `next` and
    // then Payload::kPadding zero bytes, as a line of an NDJSON message is.
    Outcome run(std::string_view line, std::string_view next = "", int64_t receivedAt = kReceivedAt,
                int64_t now = kNow)
    {
        buffer_.assign(line);
        if (!next.empty()) {
            buffer_ += '\n';
            buffer_ += next;
        }
        buffer_.append(Payload::kPadding, '\0');
        Outcome o;
        o.ok = validator_.validate(std::string_view(buffer_.data(), line.size()), receivedAt, now, arena_, o.event,
                                   o.why);
        return o;
    }

    // The rejection of `line`; fails the test when it is accepted.
    Rejection reject(std::string_view line, int64_t now = kNow)
    {
        Outcome o = run(line, "", kReceivedAt, now);
        INFO("line: " << line);
        REQUIRE_FALSE(o.ok);
        return o.why;
    }

    ParsedEvent accept(std::string_view line, int64_t receivedAt = kReceivedAt, int64_t now = kNow)
    {
        Outcome o = run(line, "", receivedAt, now);
        INFO("line: " << line << "\nrejected: " << reasonCode(o.why.reason) << ": " << o.why.message);
        REQUIRE(o.ok);
        return o.event;
    }

    const std::string& buffer() const { return buffer_; }
    std::string& mutableBuffer() { return buffer_; }
    Arena& arena() { return arena_; }
    Validator& validator() { return validator_; }

private:
    std::shared_ptr<const ContractSet> set_;
    Validator validator_;
    Arena arena_;
    std::string buffer_;
};

}  // namespace sluice::contract::testing
