// Reading a CSV row as an event of a contract: each cell is text, and the field it fills says
// how to read it (an integer field reads "42" as the integer 42, a string field reads it as the
// text "42"; an array field's cell holds a JSON array). The values then go through the same
// Checker as JSON events, so a row gets the same reasons and messages as the same event sent
// as JSON would. An empty cell is an absent value.
#pragma once

#include <span>
#include <string_view>

#include "contract/checker.h"
#include "contract/record_layout.h"
#include "contract/validator.h"

namespace sluice::contract {

// The value a cell holds for a field of `type`: kString for string fields; otherwise an
// integer, a number, a boolean (true/false in any case) when the text is one, else kString.
RawScalar textValue(std::string_view cell, FieldType type);

// `cells` are the row's cells in header order, mapped by layout.byColumn. Fills out.contract and
// out.fields (strings copied into `arena`) and the job's own cells in `extras`; the caller sets
// consent, event time and event id. Array cells are parsed by `validator`, so every cell must
// stay readable for Payload::kPadding bytes past its end.
bool readTextRecord(Validator& validator, std::span<const std::string_view> cells, const RecordLayout& layout,
                    Arena& arena, ParsedEvent& out, RecordExtras& extras, Rejection& why);

}  // namespace sluice::contract
