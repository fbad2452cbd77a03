#include "transform/stored_events.h"

#include <algorithm>
#include <optional>

namespace sluice::transform {

ConsentMask consentOf(std::string_view json)
{
    ConsentMask mask = 0;
    int level = -1;
    for (char c : json) {
        if (c >= '0' && c <= '9') {
            level = (level < 0 ? 0 : level * 10) + (c - '0');
        } else {
            if (level >= 0 && level <= kMaxPurposeLevel)
                mask |= ConsentMask{1} << level;
            level = -1;
        }
    }
    return mask;
}

StoredEventDecoder::StoredEventDecoder(const AggregationSpec& spec, const ContractSpec& contract)
    : columns_{"batch_id", "event_time", "consent", "key_link"},
      readers_(contract.fields.size()),
      values_(contract.fields.size()),
      plain_(contract.fields.size())
{
    for (size_t i = 0; i < contract.fields.size(); ++i) {
        const FieldSpec& f = contract.fields[i];
        FieldReader& r = readers_[i];
        r.type = f.type;
        r.pii = f.isPii();
        r.groupBy = std::find(spec.groupBy.begin(), spec.groupBy.end(), f.name) != spec.groupBy.end();
        bool used = r.groupBy || static_cast<int>(i) == contract.subjectFieldIndex ||
                    (contract.subjectFieldIndex < 0 && static_cast<int>(i) == contract.keyFieldIndex);
        for (const MetricSpec& m : spec.metrics)
            used = used || m.field == f.name;
        r.needed = r.pii && used;
        readsPii_ = readsPii_ || r.needed;
        if (used && !f.array) {
            r.column = static_cast<int>(columns_.size());
            columns_.push_back(f.name);
        }
    }
}

StoredEventDecoder::Event StoredEventDecoder::decode(const store::Stmt& row, privacy::StoredKeyRing* keys)
{
    Event e;
    e.batchId = row.columnInt(kBatchColumn);
    e.timeMs = row.columnInt(kTimeColumn);
    e.consent = consentOf(row.columnText(kConsentColumn));
    const std::string_view keyLink = row.columnText(kKeyLinkColumn);
    for (size_t i = 0; i < readers_.size(); ++i) {
        const FieldReader& r = readers_[i];
        values_[i] = Value();
        if (r.column < 0 || row.columnIsNull(r.column))
            continue;
        if (r.pii) {
            if (!r.needed)
                continue;
            std::optional<std::string> text;
            if (keys) {
                if (auto plain = keys->decryptBase64(keyLink, row.columnText(r.column)))
                    text = std::move(*plain);
            }
            if (!text) {
                ++e.missingPii;
                e.grouped = e.grouped && !r.groupBy;
                continue;
            }
            plain_[i] = std::move(*text);
            values_[i] = Value::ofString(plain_[i]);
            continue;
        }
        switch (r.type) {
        case FieldType::kInteger: values_[i] = Value::ofInt(row.columnInt(r.column)); break;
        case FieldType::kNumber: values_[i] = Value::ofReal(row.columnDouble(r.column)); break;
        case FieldType::kBoolean: values_[i] = Value::ofBool(row.columnInt(r.column) != 0); break;
        case FieldType::kString: values_[i] = Value::ofString(row.columnText(r.column)); break;
        }
    }
    e.fields = values_;
    return e;
}

}  // namespace sluice::transform
