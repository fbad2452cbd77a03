#include "job/job_outputs.h"

#include <algorithm>
#include <array>
#include <charconv>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/value.h"
#include "core/wipe.h"
#include "privacy/tink_keyset.h"
#include "store/job_tables.h"

namespace sluice::job {
namespace {

// Meta cells of an events row (transform/transformer.cpp): batch_id, event_id, event_time,
// received_at, key_link, consent.
constexpr size_t kEventId = 1, kEventTime = 2, kKeyLink = 4, kConsent = 5, kMetaColumns = 6;

// Whether a CSV field must be quoted: it holds a comma, a quote or a line break. The writer
// formats every cell of every row through here (most of the bytes are ciphertexts, which never
// need quotes): 16 bytes at a time where SSE2 is there, one at a time with a table elsewhere and
// for the tail.
constexpr std::array<bool, 256> kQuoteTriggers = [] {
    std::array<bool, 256> t{};
    t[static_cast<unsigned char>(',')] = t[static_cast<unsigned char>('"')] = true;
    t[static_cast<unsigned char>('\n')] = t[static_cast<unsigned char>('\r')] = true;
    return t;
}();

bool needsQuotes(std::string_view s)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i comma = _mm_set1_epi8(','), quote = _mm_set1_epi8('"');
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    for (; i + 16 <= s.size(); i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
        const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, quote)),
                                         _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
        if (_mm_movemask_epi8(hit) != 0)
            return true;
    }
#endif
    for (; i < s.size(); ++i)
        if (kQuoteTriggers[static_cast<unsigned char>(s[i])])
            return true;
    return false;
}

void csvField(std::string& out, std::string_view s)
{
    if (!needsQuotes(s)) {
        out.append(s.data(), s.size());
        return;
    }
    out += '"';
    // Runs between quotes in one append each; every quote doubled.
    for (size_t at = 0; at < s.size();) {
        const size_t quote = s.find('"', at);
        const size_t end = quote == std::string_view::npos ? s.size() : quote + 1;
        out.append(s.data() + at, end - at);
        if (quote != std::string_view::npos)
            out += '"';
        at = end;
    }
    out += '"';
}

void appendInt(std::string& out, int64_t v)
{
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

// A number cell as CSV and JSON write it alike (a boolean field's 0/1 as false/true); false
// for a cell that is not a number.
bool appendNumberCell(std::string& out, const Cell& c, const FieldSpec* f)
{
    if (c.kind == Cell::Kind::kInt) {
        if (f && f->type == FieldType::kBoolean && !f->array)
            out += c.i() ? "true" : "false";
        else
            appendInt(out, c.i());
        return true;
    }
    if (c.kind == Cell::Kind::kReal) {
        appendDouble(out, c.d());
        return true;
    }
    return false;
}

void csvCell(std::string& out, const Cell& c, const FieldSpec* f)
{
    if (c.kind == Cell::Kind::kText || c.kind == Cell::Kind::kBlob)
        csvField(out, c.text());
    else
        appendNumberCell(out, c, f);  // NULL: an empty field
}

// A cell as a JSON value: array fields and the consent list are JSON text already.
void jsonCell(std::string& out, const Cell& c, const FieldSpec* f, bool rawText)
{
    if (c.kind == Cell::Kind::kNull)
        out += "null";
    else if (c.kind != Cell::Kind::kText && c.kind != Cell::Kind::kBlob)
        appendNumberCell(out, c, f);
    else if (rawText)
        out += c.text();
    else
        appendJsonString(out, c.text());
}

}  // namespace

void appendRejectRow(std::string& out, FileFormat format, std::string_view file, uint64_t line, uint64_t row,
                     std::string_view column, std::string_view code, std::string_view message)
{
    if (format == FileFormat::kCsv) {
        csvField(out, file);
        out += ',' + std::to_string(line) + ',' + std::to_string(row) + ',';
        csvField(out, column);
        out += ',';
        csvField(out, code);
        out += ',';
        csvField(out, message);
        out += '\n';
        return;
    }
    out += "{\"file\":";
    appendJsonString(out, file);
    out += ",\"line\":" + std::to_string(line) + ",\"row\":" + std::to_string(row) + ",\"column\":";
    if (column.empty())
        out += "null";
    else
        appendJsonString(out, column);
    out += ",\"reason\":";
    appendJsonString(out, code);
    out += ",\"message\":";
    appendJsonString(out, message);
    out += "}\n";
}

JobOutputs::JobOutputs(const JobSpec& job, std::vector<std::string> inputNames)
    : job_(job), inputNames_(std::move(inputNames))
{
    encrypted_.format = job.outputs.encrypted.format;
    rejects_.format = job.outputs.rejects.format;
    derived_.resize(job.outputs.derived.size());
    derivedOf_.assign(job.pipeline->outputs.size(), -1);
    for (size_t d = 0; d < job.outputs.derived.size(); ++d) {
        derived_[d].format = job.outputs.derived[d].file.format;
        for (size_t o = 0; o < job.pipeline->outputs.size(); ++o)
            if (job.pipeline->outputs[o].name == job.outputs.derived[d].name)
                derivedOf_[o] = static_cast<int>(d);
    }
    aggregations_.resize(job.outputs.aggregations.size());
    for (size_t a = 0; a < aggregations_.size(); ++a)
        aggregations_[a].format = job.outputs.aggregations[a].file.format;
    keysTink_.format = FileFormat::kJsonl;
    keysCsv_.secret = keysTink_.secret = true;
}

std::vector<JobOutputs::Stream*> JobOutputs::streams()
{
    std::vector<Stream*> out;
    if (job_.outputs.encrypted.wanted())
        out.push_back(&encrypted_);
    for (size_t d = 0; d < derived_.size(); ++d)
        if (job_.outputs.derived[d].file.wanted())
            out.push_back(&derived_[d]);
    if (job_.outputs.rejects.wanted())
        out.push_back(&rejects_);
    if (!job_.outputs.keysCsv.empty())
        out.push_back(&keysCsv_);
    if (!job_.outputs.keysTink.empty())
        out.push_back(&keysTink_);
    return out;
}

void JobOutputs::header(Stream& s, bool dataRow)
{
    if (s.format != FileFormat::kCsv)
        return;
    std::string line;
    if (dataRow) {
        line = "key_link,event_time,consent";
        if (!job_.eventIdField.empty())
            line += ",event_id";
        for (const FieldSpec& f : job_.contract().fields) {
            line += ',';
            csvField(line, f.name);
        }
    } else {
        line = "file,line,row,column,reason,message";
    }
    line += '\n';
    s.file.write(line);
}

Status JobOutputs::create()
{
    if (job_.outputs.encrypted.wanted()) {
        SLUICE_RETURN_IF_ERROR(encrypted_.file.create(job_.outputs.encrypted.path, false));
        header(encrypted_, true);
    }
    for (size_t d = 0; d < derived_.size(); ++d) {
        if (!job_.outputs.derived[d].file.wanted())
            continue;
        SLUICE_RETURN_IF_ERROR(derived_[d].file.create(job_.outputs.derived[d].file.path, false));
        header(derived_[d], true);
    }
    if (job_.outputs.rejects.wanted()) {
        SLUICE_RETURN_IF_ERROR(rejects_.file.create(job_.outputs.rejects.path, false));
        header(rejects_, false);
    }
    if (!job_.outputs.keysCsv.empty()) {
        SLUICE_RETURN_IF_ERROR(keysCsv_.file.create(job_.outputs.keysCsv, true));
        std::string line;
        privacy::appendKeyExportCsvHeader(line);
        keysCsv_.file.write(line);
    }
    if (!job_.outputs.keysTink.empty())
        SLUICE_RETURN_IF_ERROR(keysTink_.file.create(job_.outputs.keysTink, true));
    return flush();
}

Status JobOutputs::resume(const std::map<std::string, uint64_t>& sizes)
{
    auto one = [&](Stream& s, const std::string& path) {
        auto it = sizes.find(path);
        if (it == sizes.end())
            return Status::corruption("the checkpoint has no size for " + path);
        return s.file.resume(path, s.secret, it->second);
    };
    if (job_.outputs.encrypted.wanted())
        SLUICE_RETURN_IF_ERROR(one(encrypted_, job_.outputs.encrypted.path));
    for (size_t d = 0; d < derived_.size(); ++d)
        if (job_.outputs.derived[d].file.wanted())
            SLUICE_RETURN_IF_ERROR(one(derived_[d], job_.outputs.derived[d].file.path));
    if (job_.outputs.rejects.wanted())
        SLUICE_RETURN_IF_ERROR(one(rejects_, job_.outputs.rejects.path));
    if (!job_.outputs.keysCsv.empty())
        SLUICE_RETURN_IF_ERROR(one(keysCsv_, job_.outputs.keysCsv));
    if (!job_.outputs.keysTink.empty())
        SLUICE_RETURN_IF_ERROR(one(keysTink_, job_.outputs.keysTink));
    return Status::ok();
}

std::map<std::string, uint64_t> JobOutputs::sizes() const
{
    std::map<std::string, uint64_t> out;
    auto* self = const_cast<JobOutputs*>(this);
    for (Stream* s : self->streams())
        out[s->file.finalPath()] = s->file.size();
    return out;
}

void JobOutputs::row(Stream& s, const Cell* meta, const Cell* fields)
{
    const ContractSpec& contract = job_.contract();
    std::string& out = s.file.buffer();
    if (s.format == FileFormat::kCsv) {
        csvCell(out, meta[kKeyLink], nullptr);
        out += ',';
        csvCell(out, meta[kEventTime], nullptr);
        out += ',';
        csvCell(out, meta[kConsent], nullptr);
        if (!job_.eventIdField.empty()) {
            out += ',';
            csvCell(out, meta[kEventId], nullptr);
        }
        for (size_t f = 0; f < contract.fields.size(); ++f) {
            out += ',';
            csvCell(out, fields[f], &contract.fields[f]);
        }
        out += '\n';
    } else {
        out += "{\"key_link\":";
        jsonCell(out, meta[kKeyLink], nullptr, false);
        out += ",\"event_time\":";
        jsonCell(out, meta[kEventTime], nullptr, false);
        out += ",\"consent\":";
        jsonCell(out, meta[kConsent], nullptr, true);
        if (!job_.eventIdField.empty() && meta[kEventId].kind != Cell::Kind::kNull) {
            out += ",\"event_id\":";
            jsonCell(out, meta[kEventId], nullptr, false);
        }
        for (size_t f = 0; f < contract.fields.size(); ++f) {
            if (fields[f].kind == Cell::Kind::kNull)
                continue;  // absent, as in the events it came from
            out += ',';
            appendJsonString(out, contract.fields[f].name);
            out += ':';
            jsonCell(out, fields[f], &contract.fields[f], contract.fields[f].array);
        }
        out += "}\n";
    }
    s.file.commitBuffer();
}

void JobOutputs::rejectRow(Stream& s, const Chunk& chunk, const RowReject& r)
{
    const RawRow& raw = chunk.rows[r.row];
    appendRejectRow(s.file.buffer(), s.format, inputNames_[chunk.file], raw.line, raw.row, r.column, r.code, r.message);
    s.file.commitBuffer();
}

void JobOutputs::add(const WriteBatch& wb, const Chunk& chunk, const std::vector<RowReject>& rejects)
{
    const std::string events = job_.contract().tableName();
    for (const TableRows& t : wb.inserts) {
        if (t.table == events) {
            if (!job_.outputs.encrypted.wanted())
                continue;
            for (size_t r = 0; r < t.rows(); ++r) {
                const Cell* row = t.cells.data() + r * t.width;
                this->row(encrypted_, row, row + kMetaColumns);
            }
            continue;
        }
        for (size_t o = 0; o < job_.pipeline->outputs.size(); ++o) {
            const int d = derivedOf_[o];
            if (d < 0 || t.table != job_.pipeline->outputs[o].tableName())
                continue;
            if (!job_.outputs.derived[static_cast<size_t>(d)].file.wanted())
                continue;
            for (size_t r = 0; r < t.rows(); ++r) {
                const Cell* row = t.cells.data() + r * t.width + 1;  // after event_seq
                this->row(derived_[static_cast<size_t>(d)], row, row + kMetaColumns);
            }
        }
    }
    if (job_.outputs.rejects.wanted())
        for (const RowReject& r : rejects)
            rejectRow(rejects_, chunk, r);
}

Status JobOutputs::flush()
{
    for (Stream* s : streams())
        SLUICE_RETURN_IF_ERROR(s->file.flush());
    return Status::ok();
}

Status JobOutputs::sync()
{
    for (Stream* s : streams())
        SLUICE_RETURN_IF_ERROR(s->file.sync());
    return Status::ok();
}

Status JobOutputs::writeAggregations(store::Db& db)
{
    for (size_t a = 0; a < aggregations_.size(); ++a) {
        const NamedOutput& named = job_.outputs.aggregations[a];
        if (!named.file.wanted())
            continue;
        Stream& s = aggregations_[a];
        SLUICE_RETURN_IF_ERROR(s.file.create(named.file.path, false));
        const AggregationSpec* spec = nullptr;
        for (const AggregationSpec& candidate : job_.pipeline->aggregations)
            if (candidate.name == named.name)
                spec = &candidate;
        if (!spec)
            return Status::internal("no aggregation " + named.name);
        std::vector<std::string> names;
        int columns = 0;
        Status rows = store::forEachWindowRow(
            db, spec->viewName(),
            [&](const std::vector<std::string>& columnNames) {
                names = columnNames;
                columns = static_cast<int>(names.size());
                if (s.format == FileFormat::kCsv) {
                    std::string line;
                    for (int c = 0; c < columns; ++c) {
                        if (c)
                            line += ',';
                        csvField(line, names[static_cast<size_t>(c)]);
                    }
                    line += '\n';
                    s.file.write(line);
                }
            },
            [&](const store::Stmt& row) {
                std::string& out = s.file.buffer();
                if (s.format == FileFormat::kJsonl)
                    out += '{';
                for (int c = 0; c < columns; ++c) {
                    if (s.format == FileFormat::kCsv) {
                        if (c)
                            out += ',';
                    } else {
                        if (c)
                            out += ',';
                        appendJsonString(out, names[static_cast<size_t>(c)]);
                        out += ':';
                    }
                    if (row.columnIsNull(c)) {
                        if (s.format == FileFormat::kJsonl)
                            out += "null";
                        continue;
                    }
                    const std::string_view text = row.columnText(c);  // numbers as SQLite prints them
                    if (s.format == FileFormat::kCsv)
                        csvField(out, text);
                    else if (row.columnIsNumber(c))
                        out += text;
                    else
                        appendJsonString(out, text);
                }
                out += s.format == FileFormat::kJsonl ? "}\n" : "\n";
                s.file.commitBuffer();
            });
        SLUICE_RETURN_IF_ERROR(rows);
        SLUICE_RETURN_IF_ERROR(s.file.flush());
    }
    return Status::ok();
}

Status JobOutputs::addKeys(const std::vector<store::StoredKey>& keys, const privacy::KeyWrapper& wrapper)
{
    const bool csv = !job_.outputs.keysCsv.empty();
    const bool tink = !job_.outputs.keysTink.empty();
    if (!csv && !tink)
        return Status::ok();
    for (const store::StoredKey& stored : keys) {
        const std::string& link = stored.keyLink;
        auto key = wrapper.unwrap(stored.wrapped, link);
        if (!key)
            return key.status().withContext("key " + link);
        auto keyset = privacy::tinkKeysetJson(stored.keyId, key->view());
        if (!keyset)
            return keyset.status().withContext("key " + link);
        if (csv) {
            privacy::KeyExportRow export_{link, *keyset, stored.contract, stored.expiresAtMs};
            privacy::appendKeyExportCsvRow(keysCsv_.file.buffer(), export_);
            keysCsv_.file.commitBuffer();
            wipe(export_.encryptionKey);
        }
        if (tink) {
            privacy::appendKeyExportJsonLine(keysTink_.file.buffer(), link, stored.contract, stored.createdAtMs,
                                             stored.expiresAtMs, *keyset);
            keysTink_.file.commitBuffer();
        }
        wipe(*keyset);
    }
    return Status::ok();
}

Result<std::vector<std::string>> JobOutputs::publish(bool rejectsOnly)
{
    std::vector<std::string> published;
    auto one = [&](Stream& s) -> Status {
        if (!s.file.open())
            return Status::ok();
        SLUICE_RETURN_IF_ERROR(s.file.publish());
        published.push_back(s.file.finalPath());
        return Status::ok();
    };
    if (!rejectsOnly) {
        SLUICE_RETURN_IF_ERROR(one(encrypted_));
        for (Stream& s : derived_)
            SLUICE_RETURN_IF_ERROR(one(s));
        for (Stream& s : aggregations_)
            SLUICE_RETURN_IF_ERROR(one(s));
        SLUICE_RETURN_IF_ERROR(one(keysCsv_));
        SLUICE_RETURN_IF_ERROR(one(keysTink_));
    }
    SLUICE_RETURN_IF_ERROR(one(rejects_));
    return published;
}

std::vector<std::string> JobOutputs::partialPaths() const
{
    std::vector<std::string> out;
    for (const std::string& p : job_.outputPaths())
        out.push_back(partialPath(p));
    return out;
}

}  // namespace sluice::job
