#include "job/consent_map.h"

namespace sluice::job {

bool parseLevelList(std::string_view t, ConsentMask& out, bool& inRange)
{
    inRange = true;
    out = 0;
    auto trim = [](std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
            s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
            s.remove_suffix(1);
        return s;
    };
    t = trim(t);
    if (t.size() >= 2 && t.front() == '[' && t.back() == ']')
        t = trim(t.substr(1, t.size() - 2));
    else if (t.empty())
        return false;
    if (t.empty())
        return true;  // "[]": no consent
    size_t i = 0;
    while (true) {
        while (i < t.size() && (t[i] == ' ' || t[i] == '\t'))
            ++i;
        const size_t start = i;
        int64_t level = 0;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
            if (level < 1000)
                level = level * 10 + (t[i] - '0');
            ++i;
        }
        if (i == start)
            return false;
        if (level > kMaxPurposeLevel)
            inRange = false;
        else
            out |= ConsentMask{1} << level;
        while (i < t.size() && (t[i] == ' ' || t[i] == '\t'))
            ++i;
        if (i == t.size())
            return true;
        if (t[i] != ',')
            return false;
        ++i;
    }
}

ConsentMapper::ConsentMapper(ConsentSpec spec) : spec_(std::move(spec))
{
    for (const auto& [text, mask] : spec_.values)
        values_.emplace(text, mask);
}

ConsentMapper::Outcome ConsentMapper::fallback(ConsentMask& out) const
{
    if (!spec_.fallback)
        return Outcome::kUnmappable;
    out = *spec_.fallback;
    return Outcome::kOk;
}

ConsentMapper::Outcome ConsentMapper::map(std::string_view text, bool present, ConsentMask& out) const
{
    if (!present || text.empty())
        return fallback(out);
    if (!values_.empty()) {
        auto it = values_.find(text);
        if (it != values_.end()) {
            out = it->second;
            return Outcome::kOk;
        }
    }
    if (spec_.literal) {
        bool inRange = true;
        if (parseLevelList(text, out, inRange))
            return inRange ? Outcome::kOk : Outcome::kBadLevels;
    }
    return fallback(out);
}

ConsentMapper::Outcome ConsentMapper::mapLevels(const std::vector<int64_t>& levels, ConsentMask& out) const
{
    if (!spec_.literal)
        return fallback(out);
    out = 0;
    for (int64_t level : levels) {
        if (level < 0 || level > kMaxPurposeLevel)
            return Outcome::kBadLevels;
        out |= ConsentMask{1} << level;
    }
    return Outcome::kOk;
}

}  // namespace sluice::job
