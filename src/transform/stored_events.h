// The committed events of a contract read back for one aggregation (sluicectl reprocess, and
// the replay after a session snapshot when the daemon starts): the columns of events_<contract>
// it needs, and each row turned into the field values Aggregator::add() takes, PII fields the
// aggregation reads decrypted with the keys that still exist.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/spec.h"
#include "core/value.h"
#include "privacy/key_ring.h"
#include "store/db.h"

namespace sluice::transform {

// "[0,2]" (an events row's consent column) -> the consent bit mask.
ConsentMask consentOf(std::string_view json);

class StoredEventDecoder {
public:
    StoredEventDecoder(const AggregationSpec& spec, const ContractSpec& contract);

    // batch_id, event_time, consent, key_link, then the fields the aggregation reads (the
    // others stay missing, as the aggregation never reads them): select them in this order.
    const std::vector<std::string>& columns() const { return columns_; }
    // Whether the aggregation reads a PII field (decode() then needs a key ring).
    bool readsPii() const { return readsPii_; }

    struct Event {
        int64_t batchId = 0;
        int64_t timeMs = 0;
        ConsentMask consent = 0;
        // False when a PII group_by value could not be decrypted (its key was shredded): the
        // event belongs to no group, and only moves the watermark.
        bool grouped = true;
        uint32_t missingPii = 0;  // PII values that could not be decrypted
        std::span<const Value> fields;  // indexed like ContractSpec::fields
    };
    // One row of columns(). `keys` may be null when !readsPii(). Text values point into the row
    // and into this decoder until the next call.
    Event decode(const store::Stmt& row, privacy::StoredKeyRing* keys);

private:
    // The first columns(), in this order.
    enum : int { kBatchColumn, kTimeColumn, kConsentColumn, kKeyLinkColumn };
    // How to read one contract field from an events row.
    struct FieldReader {
        int column = -1;
        FieldType type = FieldType::kString;
        bool pii = false;
        bool needed = false;  // a PII field the aggregation reads
        bool groupBy = false;
    };
    std::vector<std::string> columns_;
    std::vector<FieldReader> readers_;
    std::vector<Value> values_;
    std::vector<std::string> plain_;
    bool readsPii_ = false;
};

}  // namespace sluice::transform
