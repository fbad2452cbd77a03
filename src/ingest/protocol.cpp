#include "ingest/protocol.h"

#include <nlohmann/json.hpp>

#include "core/value.h"

namespace sluice::ingest {

Result<RequestHeader> parseHeader(std::string_view frame)
{
    auto j = nlohmann::json::parse(frame, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Status::invalid("the header frame must be a JSON object {\"producer\": ..., \"seq\": ...}");
    RequestHeader h;
    auto producer = j.find("producer");
    if (producer == j.end() || !producer->is_string())
        return Status::invalid("header.producer must be a string");
    h.producer = producer->get<std::string>();
    if (h.producer.empty() || h.producer.size() > kMaxProducerBytes)
        return Status::invalid("header.producer must be 1 to " + std::to_string(kMaxProducerBytes) + " bytes");
    for (unsigned char c : h.producer)
        if (c < 0x20 || c == 0x7f)
            return Status::invalid("header.producer must not contain control characters");
    auto seq = j.find("seq");
    if (seq == j.end() || !seq->is_number_integer() || (seq->is_number_integer() && !seq->is_number_unsigned() &&
                                                        seq->get<int64_t>() < 0))
        return Status::invalid("header.seq must be a non-negative integer");
    h.seq = seq->get<uint64_t>();
    if (h.seq > static_cast<uint64_t>(INT64_MAX))
        return Status::invalid("header.seq must be below 2^63");
    return h;
}

std::string formatReply(const RequestOutcome& o)
{
    std::string out = "{";
    if (!o.producer.empty()) {
        out += "\"producer\":";
        appendJsonString(out, o.producer);
        out += ",\"seq\":" + std::to_string(o.seq) + ",";
    }
    if (o.state == RequestState::kRejected) {
        out += "\"status\":\"error\",\"reason\":\"";
        out += reasonCode(o.rejectReason);
        out += "\",\"message\":";
        appendJsonString(out, o.rejectMessage);
        out += "}";
        return out;
    }
    out += "\"status\":\"ok\"";
    if (o.state == RequestState::kDuplicate)
        out += ",\"duplicate\":true";
    out += ",\"accepted\":" + std::to_string(o.accepted) + ",\"rejected\":" + std::to_string(o.rejected);
    if (!o.errors.empty()) {
        out += ",\"errors\":[";
        size_t n = std::min(o.errors.size(), kMaxErrorsInReply);
        for (size_t i = 0; i < n; ++i) {
            const EventError& e = o.errors[i];
            if (i)
                out += ',';
            out += "{\"index\":" + std::to_string(e.index) + ",\"reason\":\"";
            out += reasonCode(e.reason);
            out += "\",\"message\":";
            appendJsonString(out, e.message);
            out += '}';
        }
        out += ']';
        if (o.errors.size() > n)
            out += ",\"errors_truncated\":true";
    }
    out += '}';
    return out;
}

}  // namespace sluice::ingest
