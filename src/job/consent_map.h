// A record's consent from a column: exact values mapped to purpose levels ("yes" -> [0,1,2]),
// or the levels written out ("1", "[0,1]", "0,1", "[]"), and a default for rows where the
// column is absent, empty or holds a value that is neither. Without a default such a row is
// refused (unmappable consent). Immutable; shared by every lane.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/spec.h"

namespace sluice::job {

struct ConsentSpec {
    std::string column;                                        // "": no column, the default applies
    std::vector<std::pair<std::string, ConsentMask>> values;   // exact cell text -> levels
    bool literal = true;                                       // cells may spell out levels
    std::optional<ConsentMask> fallback;                       // the "default"
};

class ConsentMapper {
public:
    enum class Outcome { kOk, kUnmappable, kBadLevels };

    explicit ConsentMapper(ConsentSpec spec);

    // `text` is the cell (ignored when !present).
    Outcome map(std::string_view text, bool present, ConsentMask& out) const;
    // A JSON array or number of levels (JSONL); `levels` empty and `ok` false: not levels.
    Outcome mapLevels(const std::vector<int64_t>& levels, ConsentMask& out) const;

    const ConsentSpec& spec() const { return spec_; }

private:
    Outcome fallback(ConsentMask& out) const;

    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    ConsentSpec spec_;
    std::unordered_map<std::string, ConsentMask, Hash, std::equal_to<>> values_;
};

// "1", "[0,1]", "0, 1", "[ ]": true with the mask; `inRange` false when a level is over 63.
bool parseLevelList(std::string_view text, ConsentMask& out, bool& inRange);

}  // namespace sluice::job
