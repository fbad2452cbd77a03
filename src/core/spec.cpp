#include "core/spec.h"

#include "core/value.h"

namespace sluice {

std::string_view fieldTypeName(FieldType type, bool array)
{
    switch (type) {
    case FieldType::kString: return array ? "array of string" : "string";
    case FieldType::kInteger: return array ? "array of integer" : "integer";
    case FieldType::kNumber: return array ? "array of number" : "number";
    case FieldType::kBoolean: return array ? "array of boolean" : "boolean";
    }
    return "?";
}

std::string_view exporterTypeName(ExporterType type)
{
    switch (type) {
    case ExporterType::kFile: return "file";
    case ExporterType::kStream: return "stream";
    case ExporterType::kKafka: return "kafka";
    }
    return "?";
}

int ContractSpec::fieldIndex(std::string_view name) const
{
    for (size_t i = 0; i < fields.size(); ++i)
        if (fields[i].name == name)
            return static_cast<int>(i);
    return -1;
}

std::string ContractSpec::ident() const
{
    std::string out;
    out.reserve(ref.size());
    for (char c : ref) {
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            out += c;
        else if (c >= 'A' && c <= 'Z')
            out += static_cast<char>(c - 'A' + 'a');
        else
            out += '_';
    }
    return out;
}

std::string_view windowKindName(WindowKind kind)
{
    switch (kind) {
    case WindowKind::kTumbling: return "tumbling";
    case WindowKind::kSliding: return "sliding";
    case WindowKind::kSession: return "session";
    }
    return "?";
}

std::string_view maskAlgorithmName(MaskAlgorithm algorithm)
{
    return algorithm == MaskAlgorithm::kMurmur3 ? "murmur3" : "hmac-sha256";
}

std::string MetricSpec::text() const
{
    switch (kind) {
    case MetricKind::kCount: return "count";
    case MetricKind::kSum: return "sum(" + field + ")";
    case MetricKind::kMin: return "min(" + field + ")";
    case MetricKind::kMax: return "max(" + field + ")";
    case MetricKind::kAvg: return "avg(" + field + ")";
    case MetricKind::kDistinct: return "distinct(" + field + ")";
    }
    return "?";
}

std::string aggregationDefinition(const AggregationSpec& a, const ContractSpec& contract)
{
    std::string out = "{\"name\":";
    appendJsonString(out, a.name);
    out += ",\"contract\":";
    appendJsonString(out, a.contract);
    out += ",\"window\":{\"type\":\"";
    out += windowKindName(a.window);
    out += '"';
    if (a.window == WindowKind::kSession) {
        out += ",\"gap\":" + std::to_string(a.gapMs);
    } else {
        out += ",\"size\":" + std::to_string(a.windowMs);
        if (a.window == WindowKind::kSliding)
            out += ",\"slide\":" + std::to_string(a.slideMs);
    }
    out += "},\"group_by\":[";
    for (size_t i = 0; i < a.groupBy.size(); ++i) {
        if (i)
            out += ',';
        appendJsonString(out, a.groupBy[i]);
    }
    out += "],\"metrics\":[";
    for (size_t i = 0; i < a.metrics.size(); ++i) {
        if (i)
            out += ',';
        appendJsonString(out, a.metrics[i].text());
    }
    out += "],\"consent\":[";
    for (size_t i = 0; i < a.consent.size(); ++i) {
        if (i)
            out += ',';
        out += std::to_string(a.consent[i]);
    }
    out += "],\"allowed_lateness\":";
    out += std::to_string(a.allowedLatenessMs);
    out += ",\"min_group_size\":";
    out += std::to_string(a.minGroupSize);
    out += ",\"subjects\":";
    if (!contract.subjectField.empty())
        appendJsonString(out, "data_subject_field:" + contract.subjectField);
    else if (!contract.keyField.empty())
        appendJsonString(out, "key_field:" + contract.keyField);
    else
        out += "null";
    return out + "}";
}

std::string MetricSpec::column() const
{
    switch (kind) {
    case MetricKind::kCount: return "count";
    case MetricKind::kSum: return "sum_" + field;
    case MetricKind::kMin: return "min_" + field;
    case MetricKind::kMax: return "max_" + field;
    case MetricKind::kAvg: return "avg_" + field;
    case MetricKind::kDistinct: return "distinct_" + field;
    }
    return "?";
}

const ContractSpec* PipelineSpec::findContract(std::string_view ref) const
{
    int i = contractIndex(ref);
    return i < 0 ? nullptr : &contracts[static_cast<size_t>(i)];
}

int PipelineSpec::contractIndex(std::string_view ref) const
{
    for (size_t i = 0; i < contracts.size(); ++i)
        if (contracts[i].ref == ref)
            return static_cast<int>(i);
    return -1;
}

bool isReservedColumn(std::string_view name)
{
    if (name == "seq" || name == "event_seq" || name == "event_time_ms")
        return true;
    for (std::string_view c : kEventMetaColumns)
        if (c == name)
            return true;
    return false;
}

}  // namespace sluice
