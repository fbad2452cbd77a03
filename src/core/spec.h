// What the operator configured, as plain values: contracts, derived outputs and aggregations.
// config/ builds these from files and checks them; every stage reads them and builds its own
// runtime objects (compiled patterns, keyed contexts, window state). Nothing here has logic
// beyond naming, so that every stage derives table and column names the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/export_spec.h"

namespace sluice {

enum class FieldType : uint8_t { kString, kInteger, kNumber, kBoolean };

std::string_view fieldTypeName(FieldType type, bool array);

struct FieldSpec {
    std::string name;
    FieldType type = FieldType::kString;
    bool array = false;        // an array of `type`
    bool required = false;
    int pii = -1;              // purpose level that consent must cover; -1: not PII
    std::string pattern;       // regex a string (or each string of an array) must match; "" none
    uint32_t maxLength = 0;    // bytes of a string (each element of an array); 0: the event limit
    bool isPii() const { return pii >= 0; }
};

struct ContractSpec {
    std::string ref;           // handle/name/semver
    std::string keyField;
    std::string subjectField;  // data_subject_field; "" when the contract names none
    int retentionDays = 0;     // 0: keys are never shredded by age
    std::vector<FieldSpec> fields;
    std::string path;          // the file it came from, for messages
    std::string definition;    // the file's JSON, compact, as stored in the contracts table

    int keyFieldIndex = -1;
    int subjectFieldIndex = -1;

    int fieldIndex(std::string_view name) const;
    // SQL names derived from the ref: "acme/checkout/1.0.0" -> acme_checkout_1_0_0.
    std::string ident() const;
    std::string tableName() const { return "events_" + ident(); }
    std::string viewName() const { return ident(); }
};

enum class OutputType : uint8_t { kGranular, kCumulative };
enum class MaskAlgorithm : uint8_t { kHmacSha256, kMurmur3 };

std::string_view maskAlgorithmName(MaskAlgorithm algorithm);

struct OutputSpec {
    std::string name;
    std::string contract;                  // ref
    OutputType type = OutputType::kGranular;
    std::vector<int> purposes;             // granular: all required; cumulative: exactly one level
    std::vector<std::string> maskedFields;
    MaskAlgorithm algorithm = MaskAlgorithm::kHmacSha256;
    std::string seedFile;                  // path of the masking secret; resolved by config
    std::string path;

    std::string tableName() const { return "derived_" + name; }
    std::string viewName() const { return name; }
};

enum class MetricKind : uint8_t { kCount, kSum, kMin, kMax, kAvg, kDistinct };

struct MetricSpec {
    MetricKind kind = MetricKind::kCount;
    std::string field;   // "" for count
    // The column name in the aggregation's view: count, sum_total, distinct_customer_id, ...
    std::string column() const;
    // As a pipeline file writes it: count, sum(total), distinct(customer_id), ...
    std::string text() const;
};

// tumbling: fixed windows of `windowMs`, aligned to the epoch. sliding (hopping): windows of
// `windowMs` starting every `slideMs` (which divides windowMs), so an event is in windowMs /
// slideMs of them. session: per group, a run of events with gaps of at most `gapMs`.
enum class WindowKind : uint8_t { kTumbling, kSliding, kSession };

std::string_view windowKindName(WindowKind kind);

// k-anonymity when a pipeline file does not say: a group of fewer than 5 people is hidden.
inline constexpr int kDefaultMinGroupSize = 5;

struct AggregationSpec {
    std::string name;
    std::string contract;               // ref
    WindowKind window = WindowKind::kTumbling;
    int64_t windowMs = 60'000;          // tumbling, sliding: the size
    int64_t slideMs = 0;                // sliding: the distance between window starts
    int64_t gapMs = 0;                  // session: the largest gap inside a session
    std::vector<std::string> groupBy;
    std::vector<MetricSpec> metrics;
    std::vector<int> consent;           // only events whose consent includes all of these count
    int64_t allowedLatenessMs = 0;
    int minGroupSize = kDefaultMinGroupSize;  // distinct data subjects a group needs to be shown
    std::string path;

    std::string tableName() const { return "agg_" + name; }
    std::string viewName() const { return name; }
};

// The whole definition as one line of JSON, in a pipeline file's own keys (durations in
// milliseconds, the window as an object, every default written out) plus "contract" and
// "subjects" (what min_group_size counts: "data_subject_field:<f>", "key_field:<f>" when the
// contract names no subject field, null when it names neither). The aggregations table keeps
// it, so an analyst can read what a table means, and sluicectl reprocess compares it with the
// pipeline files.
std::string aggregationDefinition(const AggregationSpec& a, const ContractSpec& contract);

// Everything that SIGHUP re-reads, as one immutable value.
struct PipelineSpec {
    std::vector<ContractSpec> contracts;
    std::vector<OutputSpec> outputs;
    std::vector<AggregationSpec> aggregations;
    std::vector<ExporterSpec> exporters;

    const ContractSpec* findContract(std::string_view ref) const;
    int contractIndex(std::string_view ref) const;
};

using PipelinePtr = std::shared_ptr<const PipelineSpec>;

// Leading columns of every events table (and of derived tables after `event_seq`), in order.
// Contract fields may not use these names.
inline constexpr std::string_view kEventMetaColumns[] = {
    "batch_id", "event_id", "event_time", "received_at", "key_link", "consent",
};
bool isReservedColumn(std::string_view name);

// Purpose levels 0..63 fit a bit mask.
inline constexpr int kMaxPurposeLevel = 63;
using ConsentMask = uint64_t;

}  // namespace sluice
