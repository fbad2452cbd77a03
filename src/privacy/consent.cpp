#include "privacy/consent.h"

#include <algorithm>
#include <bit>

namespace sluice::privacy {
namespace {

// -1 when the output is not a well-formed cumulative one.
int cumulativeLevel(const OutputSpec& output)
{
    if (output.purposes.size() != 1 || consentBit(output.purposes[0]) == 0)
        return -1;
    return output.purposes[0];
}

}  // namespace

bool outputAccepts(const OutputSpec& output, ConsentMask eventConsent)
{
    if (output.type == OutputType::kCumulative) {
        int level = cumulativeLevel(output);
        if (level < 0 || eventConsent == 0)
            return false;
        int highest = 63 - std::countl_zero(eventConsent);
        return highest >= level;
    }
    ConsentMask required = 0;
    for (int level : output.purposes) {
        ConsentMask bit = consentBit(level);
        if (bit == 0)
            return false;  // a level no event can hold
        required |= bit;
    }
    return (eventConsent & required) == required;
}

bool outputDecrypts(const OutputSpec& output, int piiLevel)
{
    if (consentBit(piiLevel) == 0)
        return false;
    if (output.type == OutputType::kCumulative) {
        int level = cumulativeLevel(output);
        return level >= 0 && piiLevel <= level;
    }
    for (int level : output.purposes)
        if (level == piiLevel)
            return true;
    return false;
}

std::vector<bool> derivedRowFields(const OutputSpec& output, const ContractSpec& contract)
{
    std::vector<bool> own(contract.fields.size(), false);
    for (size_t f = 0; f < contract.fields.size(); ++f) {
        const FieldSpec& field = contract.fields[f];
        const bool clear = !field.isPii() || outputDecrypts(output, field.pii);
        const bool masked = std::find(output.maskedFields.begin(), output.maskedFields.end(), field.name) !=
                            output.maskedFields.end();
        own[f] = clear && (field.isPii() || masked);
    }
    return own;
}

}  // namespace sluice::privacy
