#include "contract/text_record.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace sluice::contract {
namespace {

bool equalsNoCase(std::string_view a, std::string_view lower)
{
    if (a.size() != lower.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i)
        if ((a[i] | 0x20) != lower[i])
            return false;
    return true;
}

}  // namespace

RawScalar textValue(std::string_view t, FieldType type)
{
    if (type == FieldType::kString)
        return RawScalar::string(t);
    bool integer = false;
    if (jsonNumber(t, integer)) {
        if (integer) {
            int64_t v = 0;
            auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
            if (ec == std::errc() && end == t.data() + t.size())
                return RawScalar::integer(v);
            uint64_t u = 0;
            auto [uend, uec] = std::from_chars(t.data(), t.data() + t.size(), u);
            if (uec == std::errc() && uend == t.data() + t.size())
                return RawScalar::bigUnsigned(static_cast<double>(u));
        }
        double d = 0;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
        if (ec == std::errc::result_out_of_range)
            return RawScalar::real(std::isinf(d) || d == 0 ? (t[0] == '-' ? -HUGE_VAL : HUGE_VAL) : d);
        if (ec == std::errc())
            return RawScalar::real(d);
    }
    if (equalsNoCase(t, "true"))
        return RawScalar::boolean(true);
    if (equalsNoCase(t, "false"))
        return RawScalar::boolean(false);
    return RawScalar::string(t);
}

bool readTextRecord(Validator& validator, std::span<const std::string_view> cells, const RecordLayout& layout,
                    Arena& arena, ParsedEvent& out, RecordExtras& extras, Rejection& why)
{
    why.contract = layout.contract;
    why.eventId.clear();
    why.field.clear();
    extras.clear();
    const ContractSet::Compiled& compiled = validator.contracts().compiled(layout.contract);
    const ContractSpec& spec = *compiled.spec;
    Checker& checker = validator.checker();
    out.contract = layout.contract;
    out.fields = arena.allocateArray<Value>(spec.fields.size());
    const size_t n = std::min(cells.size(), layout.byColumn.size());
    for (size_t c = 0; c < n; ++c) {
        const RecordLayout::Slot& slot = layout.byColumn[c];
        const std::string_view cell = cells[c];
        using Role = RecordLayout::Role;
        switch (slot.role) {
        case Role::kUnknown:
        case Role::kIgnore: continue;
        case Role::kField: break;
        case Role::kTime:
            extras.haveTime = !cell.empty();
            extras.time = RawScalar::string(cell);
            break;
        case Role::kConsent:
            extras.haveConsent = !cell.empty();
            extras.consent = RawScalar::string(cell);
            break;
        case Role::kEventId:
            extras.haveEventId = !cell.empty();
            extras.eventId = RawScalar::string(cell);
            break;
        }
        if (slot.field < 0 || cell.empty())
            continue;
        const size_t f = static_cast<size_t>(slot.field);
        const FieldSpec& field = spec.fields[f];
        const Pattern* pattern = compiled.patterns[f].get();
        if (field.array) {
            if (!validator.validateArrayText(cell, field, pattern, arena, out.fields[f], why))
                return false;
            continue;
        }
        if (!checker.scalar(field, pattern, textValue(cell, field.type), {}, arena, out.fields[f], why))
            return false;
    }
    return Checker::required(spec, out.fields, why);
}

}  // namespace sluice::contract
