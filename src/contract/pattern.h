// A contract's regex `pattern`, compiled once with PCRE2 (JIT when available) and matched with
// JSON Schema's semantics: an unanchored search over UTF-8, `$` matching only at the very end.
// A Pattern is immutable and shared by every worker; each worker matches through its own
// PatternMatcher (PCRE2 match data is per thread).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

struct pcre2_real_code_8;
struct pcre2_real_match_data_8;
struct pcre2_real_match_context_8;

namespace sluice::contract {

class Pattern {
public:
    // Fails with the PCRE2 message and the offset of the problem in `source`. JIT compilation
    // is tried when `jit` is set; where it fails (systemd's MemoryDenyWriteExecute= forbids the
    // executable memory it needs) matching falls back to PCRE2's interpreter, same results.
    static Result<std::shared_ptr<const Pattern>> compile(std::string source, bool jit = true);

    ~Pattern();
    Pattern(const Pattern&) = delete;
    Pattern& operator=(const Pattern&) = delete;

    const std::string& source() const { return source_; }
    pcre2_real_code_8* code() const { return code_; }
    bool jit() const { return jit_; }

private:
    Pattern() = default;
    std::string source_;
    pcre2_real_code_8* code_ = nullptr;
    bool jit_ = false;
};

enum class MatchResult { kMatch, kNoMatch, kLimit };

// Per-thread match state. Not thread-safe; cheap to keep one per validator.
class PatternMatcher {
public:
    PatternMatcher();
    ~PatternMatcher();
    PatternMatcher(const PatternMatcher&) = delete;
    PatternMatcher& operator=(const PatternMatcher&) = delete;

    // `subject` must be valid UTF-8 (the JSON parser has checked it).
    MatchResult match(const Pattern& pattern, std::string_view subject);

private:
    pcre2_real_match_data_8* data_ = nullptr;
    pcre2_real_match_context_8* context_ = nullptr;
};

}  // namespace sluice::contract
