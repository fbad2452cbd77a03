// Which events a derived output takes, and which PII fields it decrypts (spec section 5,
// "Consent and derived outputs"). Pure functions of the configuration and the event's consent.
//   granular [levels]: the event's consent must include every listed level; then exactly the
//                      PII fields whose level is listed are decrypted.
//   cumulative [L]:    the event's highest consent level must be >= L (no consent never
//                      qualifies); then PII fields of levels 0..L are decrypted.
// Levels outside 0..kMaxPurposeLevel never match. A cumulative output without exactly one level
// accepts nothing (config/ rejects such outputs; this is the safe default).
#pragma once

#include <vector>

#include "core/spec.h"

namespace sluice::privacy {

// The bit of `level` in a ConsentMask, 0 for levels outside 0..63.
constexpr ConsentMask consentBit(int level)
{
    return level >= 0 && level <= kMaxPurposeLevel ? ConsentMask{1} << level : 0;
}

// Whether an event with consent `eventConsent` appears in `output`.
bool outputAccepts(const OutputSpec& output, ConsentMask eventConsent);

// For an event that `output` accepts: whether a field of PII level `piiLevel` is decrypted in
// it. False for non-PII fields (level -1), which are never encrypted in the first place.
bool outputDecrypts(const OutputSpec& output, int piiLevel);

// Per field of `contract`: whether a derived row of `output` holds a value of its own, one that
// differs from the event row's: a PII field the output decrypts, a masked field shown in clear.
// Every other field is the event row's value (non-PII as is, other PII still encrypted), which
// the derived row does not store again (store::derivedTable()).
std::vector<bool> derivedRowFields(const OutputSpec& output, const ContractSpec& contract);

}  // namespace sluice::privacy
