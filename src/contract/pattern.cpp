#include "contract/pattern.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace sluice::contract {
namespace {

// Bounds the work one match may do, so that a pathological pattern cannot stall a worker.
constexpr uint32_t kMatchLimit = 200'000;

std::string pcre2Message(int code)
{
    PCRE2_UCHAR buf[256];
    int n = pcre2_get_error_message(code, buf, sizeof buf);
    if (n < 0)
        return "PCRE2 error " + std::to_string(code);
    return std::string(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

}  // namespace

Result<std::shared_ptr<const Pattern>> Pattern::compile(std::string source, bool jit)
{
    // ALT_BSUX: \uXXXX as in ECMAScript, the dialect JSON Schema patterns are written in.
    // DOLLAR_ENDONLY: `$` must not match before a trailing newline.
    const uint32_t options = PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX;
    int error = 0;
    PCRE2_SIZE offset = 0;
    std::shared_ptr<Pattern> pattern(new Pattern());
    pattern->source_ = std::move(source);
    pattern->code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern->source_.data()),
                                   pattern->source_.size(), options, &error, &offset, nullptr);
    if (!pattern->code_)
        return Status::invalid("invalid regex at offset " + std::to_string(offset) + ": " + pcre2Message(error));
    pattern->jit_ = jit && pcre2_jit_compile(pattern->code_, PCRE2_JIT_COMPLETE) == 0;
    return std::shared_ptr<const Pattern>(std::move(pattern));
}

Pattern::~Pattern()
{
    pcre2_code_free(code_);
}

PatternMatcher::PatternMatcher()
    : data_(pcre2_match_data_create(1, nullptr)), context_(pcre2_match_context_create(nullptr))
{
    if (context_)
        pcre2_set_match_limit(context_, kMatchLimit);
}

PatternMatcher::~PatternMatcher()
{
    pcre2_match_context_free(context_);
    pcre2_match_data_free(data_);
}

MatchResult PatternMatcher::match(const Pattern& pattern, std::string_view subject)
{
    if (!data_)
        return MatchResult::kLimit;
    auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
    int rc = pattern.jit() ? pcre2_jit_match(pattern.code(), s, subject.size(), 0, 0, data_, context_)
                           : pcre2_match(pattern.code(), s, subject.size(), 0, PCRE2_NO_UTF_CHECK, data_, context_);
    if (rc >= 0)
        return MatchResult::kMatch;
    if (rc == PCRE2_ERROR_NOMATCH)
        return MatchResult::kNoMatch;
    return MatchResult::kLimit;
}

}  // namespace sluice::contract
