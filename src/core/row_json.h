// One JSON rendering of a stored row, shared by everything that shows committed data outside
// SQLite: the exporters (files, the ZeroMQ stream, Kafka), `sluicectl tap` (which prints what
// the stream carries) and `sluicectl decrypt`.
//
// An event (or a derived row) becomes the object a producer sent plus what the daemon added, the
// daemon's columns under "meta" in table order:
//
//   {"meta": {"contract": "acme/checkout/1.0.0", "seq": 17, "batch_id": 3, "event_id": "e-1",
//             "event_time": 1763712000123, "received_at": 1763712000200, "key_link": "8a1f...",
//             "consent": [0, 1]},
//    "session_id": "AQE6...", "country": "NL", "total": 42.5, "items": 3}
//
// Derived rows add "output" and "event_seq" to meta. Fields keep their contract types (booleans
// stored as 0/1 come back as true/false, arrays as arrays); PII fields are strings as stored
// (ciphertext in events; plaintext or masks where a derived output shows them), unless a
// ValueHook renders them (decrypt). A NULL field (absent from the event) is left out.
//
// Other rows (an aggregation's windows, from its view) render column by column with their SQLite
// types after a "meta" object the caller gives; blobs are left out.
//
// Not thread-safe; copyable. prepare() once per result set, then encode() per row.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/commit.h"
#include "core/spec.h"
#include "core/value.h"

namespace sluice {

// Appends a JSON number (appendJsonString is in value.h); NaN and infinities (never stored) become null. Whole numbers keep a
// ".0" so that readers infer a floating type.
void appendJsonDouble(std::string& out, double value);

class RowEncoder {
public:
    // Renders a PII field's stored text into `out` as a JSON value. `index` is the element's
    // position for arrays, -1 for a single value. Returns false to render it as stored.
    using ValueHook = std::function<bool(const FieldSpec& field, std::string_view stored, int index, std::string& out)>;

    // A contract's events, or (output != nullptr) a derived output's rows.
    static RowEncoder forEvents(const ContractSpec& contract, const OutputSpec* output = nullptr);
    // Plain rows; `meta` are (name, JSON value) pairs written first under "meta".
    static RowEncoder forColumns(std::vector<std::pair<std::string, std::string>> meta);

    // Maps the columns of a result set; call before the first encode() of each result set.
    void prepare(const std::vector<std::string>& names);
    // Appends the row as one JSON object (no newline). With a hook, PII fields go through it.
    void encode(const std::vector<Cell>& cells, std::string& out, const ValueHook* hook = nullptr) const;

private:
    enum class Role : uint8_t { kSkip, kMetaInt, kMetaText, kMetaJson, kField, kPlain };
    struct Column {
        Role role = Role::kSkip;
        std::string name;
        std::string key;  // "name": (the name as a JSON string and the colon), made once per result set
        int field = -1;   // index in contract_.fields
        bool masked = false;
    };

    std::string metaPrefix_;  // {"meta":{... constant pairs
    bool events_ = false;
    ContractSpec contract_;
    std::vector<std::string> masked_;
    std::vector<Column> columns_;
};

}  // namespace sluice
