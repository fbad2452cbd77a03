// How a batch job's records map onto its contract, for the record readers: which input name
// (JSON-lines key) or column (CSV header position) fills which contract field, which are
// ignored, and which hold what the job reads itself: the record's time, its consent, its event
// id (such a one may fill a contract field as well). Built once per input by the job; shared,
// read-only, by every lane.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "contract/checker.h"

namespace sluice::contract {

struct RecordLayout {
    enum class Role : uint8_t { kField, kIgnore, kTime, kConsent, kEventId, kUnknown };
    struct Slot {
        Role role = Role::kUnknown;
        int field = -1;  // the contract field it fills, or -1
    };
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };

    int contract = -1;
    std::unordered_map<std::string, Slot, Hash, std::equal_to<>> byName;  // JSON lines
    std::vector<Slot> byColumn;                                           // CSV

    Slot find(std::string_view name) const
    {
        auto it = byName.find(name);
        return it == byName.end() ? Slot{} : it->second;
    }
};

// What a reader found for the job's own fields (the raw values, before the job interprets them).
struct RecordExtras {
    bool haveTime = false, haveConsent = false, haveEventId = false;
    RawScalar time, consent, eventId;
    std::vector<int64_t> consentLevels;  // consent given as a JSON array of integers
    bool consentIsLevels = false;        // ... and every element was one

    void clear()
    {
        haveTime = haveConsent = haveEventId = false;
        consentLevels.clear();
        consentIsLevels = false;
    }
};

}  // namespace sluice::contract
