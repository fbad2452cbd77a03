#include "privacy/consent.h"

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

}  // namespace sluice::privacy
