#include "core/row_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace sluice {
namespace {

void appendInt(std::string& out, int64_t v)
{
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

bool isMetaInt(std::string_view name)
{
    return name == "seq" || name == "event_seq" || name == "batch_id" || name == "event_time" || name == "received_at";
}

}  // namespace

void appendJsonDouble(std::string& out, double value)
{
    if (!std::isfinite(value)) {
        out += "null";
        return;
    }
    const size_t start = out.size();
    appendDouble(out, value);
    if (out.find_first_of(".e", start) == std::string::npos)
        out += ".0";
}

RowEncoder RowEncoder::forEvents(const ContractSpec& contract, const OutputSpec* output)
{
    RowEncoder e;
    e.events_ = true;
    e.contract_ = contract;
    e.metaPrefix_ = "{\"meta\":{\"contract\":";
    appendJsonString(e.metaPrefix_, contract.ref);
    if (output) {
        e.metaPrefix_ += ",\"output\":";
        appendJsonString(e.metaPrefix_, output->name);
        e.masked_ = output->maskedFields;
    }
    return e;
}

RowEncoder RowEncoder::forColumns(std::vector<std::pair<std::string, std::string>> meta)
{
    RowEncoder e;
    e.metaPrefix_ = "{\"meta\":{";
    bool first = true;
    for (const auto& [name, value] : meta) {
        if (!first)
            e.metaPrefix_ += ',';
        first = false;
        appendJsonString(e.metaPrefix_, name);
        e.metaPrefix_ += ':';
        e.metaPrefix_ += value;
    }
    return e;
}

void RowEncoder::prepare(const std::vector<std::string>& names)
{
    columns_.assign(names.size(), Column{});
    for (size_t i = 0; i < names.size(); ++i) {
        Column& c = columns_[i];
        c.name = names[i];
        appendJsonString(c.key, c.name);
        c.key += ':';
        if (!events_) {
            c.role = Role::kPlain;
            continue;
        }
        if (isMetaInt(c.name)) {
            c.role = Role::kMetaInt;
        } else if (c.name == "event_id" || c.name == "key_link") {
            c.role = Role::kMetaText;
        } else if (c.name == "consent") {
            c.role = Role::kMetaJson;
        } else {
            const int index = contract_.fieldIndex(c.name);
            c.role = index >= 0 ? Role::kField : Role::kPlain;
            c.field = index;
            c.masked = std::find(masked_.begin(), masked_.end(), c.name) != masked_.end();
        }
    }
}

void RowEncoder::encode(const std::vector<Cell>& cells, std::string& out, const ValueHook* hook) const
{
    out += metaPrefix_;
    bool firstMeta = metaPrefix_.back() == '{';
    const size_t n = std::min(cells.size(), columns_.size());
    // meta first, in column order
    for (size_t i = 0; i < n; ++i) {
        const Column& c = columns_[i];
        const Cell& v = cells[i];
        if (c.role != Role::kMetaInt && c.role != Role::kMetaText && c.role != Role::kMetaJson)
            continue;
        if (v.kind == Cell::Kind::kNull)
            continue;
        if (!firstMeta)
            out += ',';
        firstMeta = false;
        out += c.key;
        if (c.role == Role::kMetaInt)
            appendInt(out, v.i());
        else if (c.role == Role::kMetaText)
            appendJsonString(out, v.text());
        else
            out += v.text();  // consent: JSON array text, written by the daemon
    }
    out += '}';
    for (size_t i = 0; i < n; ++i) {
        const Column& c = columns_[i];
        const Cell& v = cells[i];
        if (c.role != Role::kField && c.role != Role::kPlain)
            continue;
        if (v.kind == Cell::Kind::kNull || v.kind == Cell::Kind::kBlob)
            continue;
        out += ',';
        out += c.key;
        const FieldSpec* f = c.field >= 0 ? &contract_.fields[static_cast<size_t>(c.field)] : nullptr;
        if (!f || c.masked) {
            switch (v.kind) {
            case Cell::Kind::kInt: appendInt(out, v.i()); break;
            case Cell::Kind::kReal: appendJsonDouble(out, v.d()); break;
            default: appendJsonString(out, v.text()); break;
            }
            continue;
        }
        if (f->array) {
            // Stored as the JSON array text the daemon wrote; PII elements are strings.
            if (!f->isPii() || !hook) {
                out += v.text();
                continue;
            }
            std::string_view text = v.text();
            out += '[';
            int index = 0;
            size_t pos = 0;
            bool first = true;
            // Elements of a PII array are Base64 or plaintext strings without escapes, written by us.
            while ((pos = text.find('"', pos)) != std::string_view::npos) {
                const size_t end = text.find('"', pos + 1);
                if (end == std::string_view::npos)
                    break;
                if (!first)
                    out += ',';
                first = false;
                const std::string_view element = text.substr(pos + 1, end - pos - 1);
                if (!(*hook)(*f, element, index, out))
                    appendJsonString(out, element);
                ++index;
                pos = end + 1;
            }
            out += ']';
            continue;
        }
        if (f->isPii()) {
            if (!hook || !(*hook)(*f, v.text(), -1, out))
                appendJsonString(out, v.text());
            continue;
        }
        switch (f->type) {
        case FieldType::kBoolean: out += v.i() != 0 ? "true" : "false"; break;
        case FieldType::kInteger: appendInt(out, v.kind == Cell::Kind::kReal ? static_cast<int64_t>(v.d()) : v.i()); break;
        case FieldType::kNumber:
            appendJsonDouble(out, v.kind == Cell::Kind::kInt ? static_cast<double>(v.i()) : v.d());
            break;
        case FieldType::kString: appendJsonString(out, v.text()); break;
        }
    }
    out += '}';
}

}  // namespace sluice
