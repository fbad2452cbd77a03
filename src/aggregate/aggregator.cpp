#include "aggregate/aggregator.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>

#include "aggregate/window.h"

namespace sluice::aggregate {
namespace {

const Value kMissing{};

const Value& fieldAt(std::span<const Value> fields, int index)
{
    return index >= 0 && static_cast<size_t>(index) < fields.size() ? fields[static_cast<size_t>(index)] : kMissing;
}

// The value as its field's type would hold it, or kMissing. The contract stage only produces
// matching kinds; anything else (and NaN or an infinity, which JSON cannot carry) reads as
// missing. Numbers become doubles with -0 folded into 0, so 3, 3.0 and -0/0 group and count
// as one value.
Value normalized(const Value& v, FieldType type)
{
    switch (type) {
    case FieldType::kString:
        return v.kind == ValueKind::kString ? v : Value{};
    case FieldType::kInteger:
        return v.kind == ValueKind::kInt ? v : Value{};
    case FieldType::kNumber: {
        if (!v.isNumber())
            return {};
        double d = v.asDouble();
        if (!std::isfinite(d))
            return {};
        return Value::ofReal(d == 0 ? 0.0 : d);
    }
    case FieldType::kBoolean:
        return v.kind == ValueKind::kBool ? v : Value{};
    }
    return {};
}

void appendLe64(std::string& out, uint64_t v)
{
    for (int i = 0; i < 8; ++i)
        out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// arena.copy("") has no storage; a text cell should never carry a null pointer, which
// sqlite3_bind_text would read as NULL.
std::string_view copyText(Arena& arena, std::string_view text)
{
    return text.empty() ? std::string_view("") : arena.copy(text);
}

}  // namespace

Result<Aggregator> Aggregator::create(const AggregationSpec& spec, const ContractSpec& contract,
                                      std::span<const uint8_t, kSipKeyBytes> hashKey)
{
    auto table = AggregationTable::create(spec, contract);
    if (!table)
        return table.status();
    ConsentMask mask = 0;
    for (int level : spec.consent)
        mask |= ConsentMask{1} << level;
    return Aggregator(std::move(table.value()), spec.allowedLatenessMs, mask, hashKey);
}

Aggregator::Aggregator(AggregationTable table, int64_t latenessMs, ConsentMask consent,
                       std::span<const uint8_t, kSipKeyBytes> hashKey)
    : table_(std::move(table)),
      widthMs_(table_.windowMs()),
      latenessMs_(latenessMs),
      consentMask_(consent),
      hash_(hashKey)
{
}

void Aggregator::setMaxEventTimeMs(int64_t ms)
{
    ms = std::clamp(ms, kMinEventTimeMs, kMaxEventTimeMs);
    if (!haveMax_ || ms > maxEventTimeMs_) {
        maxEventTimeMs_ = ms;
        haveMax_ = true;
    }
}

std::optional<int64_t> Aggregator::maxEventTimeMs() const
{
    return haveMax_ ? std::optional(maxEventTimeMs_) : std::nullopt;
}

std::optional<int64_t> Aggregator::watermarkMs() const
{
    return haveMax_ ? std::optional(maxEventTimeMs_ - latenessMs_) : std::nullopt;
}

void Aggregator::add(int64_t eventTimeMs, ConsentMask consent, std::span<const Value> fields)
{
    ++counters_.events;
    if (eventTimeMs < kMinEventTimeMs || eventTimeMs > kMaxEventTimeMs) {
        ++counters_.outOfRange;
        return;
    }
    dirty_ = true;
    if ((consent & consentMask_) != consentMask_) {
        ++counters_.filtered;
    } else {
        int64_t start = windowStart(eventTimeMs, widthMs_);
        if (haveMax_ && start + widthMs_ <= maxEventTimeMs_ - latenessMs_) {
            ++counters_.late;
            ++lateByWindow_[start];
            ++lateSinceFlush_;
        } else {
            Partial& p = partialFor(start, fields);
            ++p.count;
            addMetrics(p, fields);
            ++counters_.aggregated;
        }
    }
    if (!haveMax_ || eventTimeMs > maxEventTimeMs_) {
        maxEventTimeMs_ = eventTimeMs;
        haveMax_ = true;
    }
}

Aggregator::Partial& Aggregator::partialFor(int64_t windowStart, std::span<const Value> fields)
{
    keyScratch_.clear();
    appendLe64(keyScratch_, static_cast<uint64_t>(windowStart));
    keyScratch_ += '[';
    const auto& groups = table_.groups();
    for (size_t g = 0; g < groups.size(); ++g) {
        if (g)
            keyScratch_ += ',';
        appendJson(keyScratch_, normalized(fieldAt(fields, groups[g].fieldIndex), groups[g].type));
    }
    keyScratch_ += ']';

    auto found = index_.find(std::string_view(keyScratch_));
    if (found != index_.end())
        return partials_[found->second];

    Partial p;
    p.windowStart = windowStart;
    p.groupKey.assign(keyScratch_, 8);
    p.groups.resize(groups.size());
    for (size_t g = 0; g < groups.size(); ++g) {
        Value v = normalized(fieldAt(fields, groups[g].fieldIndex), groups[g].type);
        GroupValue& out = p.groups[g];
        out.kind = v.kind;
        out.i = v.i;
        out.d = v.d;
        out.b = v.b;
        out.text.assign(v.text);
    }
    p.numeric.resize(table_.numericFields().size());
    p.sketches.resize(table_.distinctFields().size());
    index_.emplace(keyScratch_, static_cast<uint32_t>(partials_.size()));
    partials_.push_back(std::move(p));
    return partials_.back();
}

void Aggregator::addMetrics(Partial& p, std::span<const Value> fields)
{
    const auto& numeric = table_.numericFields();
    for (size_t k = 0; k < numeric.size(); ++k) {
        const NumericField& nf = numeric[k];
        Value v = normalized(fieldAt(fields, nf.fieldIndex), nf.integer ? FieldType::kInteger : FieldType::kNumber);
        if (!v.present())
            continue;
        NumericState& s = p.numeric[k];
        if (nf.integer) {
            s.intSum += v.i;
            if (s.present == 0 || v.i < s.intMin)
                s.intMin = v.i;
            if (s.present == 0 || v.i > s.intMax)
                s.intMax = v.i;
        } else {
            s.realSum += v.d;
            if (s.present == 0 || v.d < s.realMin)
                s.realMin = v.d;
            if (s.present == 0 || v.d > s.realMax)
                s.realMax = v.d;
        }
        ++s.present;
    }

    const auto& distinct = table_.distinctFields();
    for (size_t k = 0; k < distinct.size(); ++k) {
        Value v = normalized(fieldAt(fields, distinct[k].fieldIndex), distinct[k].type);
        if (!v.present())
            continue;
        // A type tag, then canonical bytes: the hash input of a value depends only on the value.
        hashScratch_.clear();
        switch (distinct[k].type) {
        case FieldType::kString:
            hashScratch_ += 's';
            hashScratch_.append(v.text);
            break;
        case FieldType::kInteger:
            hashScratch_ += 'i';
            appendLe64(hashScratch_, static_cast<uint64_t>(v.i));
            break;
        case FieldType::kNumber:
            hashScratch_ += 'r';
            appendLe64(hashScratch_, std::bit_cast<uint64_t>(v.d));
            break;
        case FieldType::kBoolean:
            hashScratch_ += 'b';
            hashScratch_ += v.b ? '\1' : '\0';
            break;
        }
        p.sketches[k].add(hash_(hashScratch_));
    }

    // The group's people, by a fingerprint tagged apart from distinct()'s hashes.
    const Value& subject = fieldAt(fields, table_.subjectFieldIndex());
    if (subject.kind == ValueKind::kString) {
        hashScratch_.clear();
        hashScratch_ += 'p';
        hashScratch_.append(subject.text);
        p.subjects.add(hash_(hashScratch_));
    }
}

FlushSummary Aggregator::flush(Arena& arena, std::vector<UpsertRows>& upserts, std::vector<Finalize>& finalizes)
{
    FlushSummary summary;
    if (!dirty_)
        return summary;
    dirty_ = false;

    if (!partials_.empty()) {
        std::vector<uint32_t> order(partials_.size());
        std::iota(order.begin(), order.end(), 0u);
        std::sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) {
            const Partial& x = partials_[a];
            const Partial& y = partials_[b];
            return x.windowStart != y.windowStart ? x.windowStart < y.windowStart : x.groupKey < y.groupKey;
        });

        UpsertRows rows;
        rows.table = table_.tableName();
        rows.columns = table_.columns();
        const size_t width = rows.columns.size();
        rows.cells.resize(partials_.size() * width);
        Cell* c = rows.cells.data();
        for (uint32_t i : order) {
            Partial& p = partials_[i];
            c[AggregationTable::kWindowStartColumn] = Cell::ofInt(p.windowStart);
            c[AggregationTable::kGroupKeyColumn] = Cell::ofText(copyText(arena, p.groupKey));
            const auto& groups = table_.groups();
            for (size_t g = 0; g < groups.size(); ++g) {
                const GroupValue& v = p.groups[g];
                Cell& cell = c[groups[g].column];
                switch (v.kind) {
                case ValueKind::kString: cell = Cell::ofText(copyText(arena, v.text)); break;
                case ValueKind::kInt: cell = Cell::ofInt(v.i); break;
                case ValueKind::kReal: cell = Cell::ofReal(v.d); break;
                case ValueKind::kBool: cell = Cell::ofInt(v.b ? 1 : 0); break;
                default: cell = Cell::null(); break;
                }
            }
            c[table_.countColumn()] = Cell::ofInt(p.count);

            const auto& numeric = table_.numericFields();
            for (size_t k = 0; k < numeric.size(); ++k) {
                const NumericField& nf = numeric[k];
                const NumericState& s = p.numeric[k];
                if (nf.sumColumn >= 0) {
                    if (!nf.integer)
                        c[nf.sumColumn] = Cell::ofReal(s.realSum);
                    else if (s.intSum >= INT64_MIN && s.intSum <= INT64_MAX)
                        c[nf.sumColumn] = Cell::ofInt(static_cast<int64_t>(s.intSum));
                    else  // as SQLite does when an integer addition overflows
                        c[nf.sumColumn] = Cell::ofReal(static_cast<double>(s.intSum));
                    c[nf.countColumn] = Cell::ofInt(s.present);
                }
                if (nf.minColumn >= 0)
                    c[nf.minColumn] = s.present == 0 ? Cell::null()
                                      : nf.integer  ? Cell::ofInt(s.intMin)
                                                    : Cell::ofReal(s.realMin);
                if (nf.maxColumn >= 0)
                    c[nf.maxColumn] = s.present == 0 ? Cell::null()
                                      : nf.integer  ? Cell::ofInt(s.intMax)
                                                    : Cell::ofReal(s.realMax);
            }

            const auto& distinct = table_.distinctFields();
            for (size_t k = 0; k < distinct.size(); ++k) {
                HyperLogLog& sketch = p.sketches[k];
                sketch.compact();
                blobScratch_.clear();
                sketch.serialize(blobScratch_);
                c[distinct[k].sketchColumn] = Cell::ofBlob(arena.copy(blobScratch_));
                c[distinct[k].estimateColumn] = Cell::ofReal(sketch.estimate());
            }
            p.subjects.compact();
            c[table_.subjectsColumn()] = Cell::ofInt(static_cast<int64_t>(p.subjects.count()));
            blobScratch_.clear();
            p.subjects.serialize(blobScratch_);
            c[table_.subjectSetColumn()] = Cell::ofBlob(arena.copy(blobScratch_));
            c[table_.finalColumn()] = Cell::ofInt(0);
            c += width;
        }
        summary.groupRows = partials_.size();
        upserts.push_back(std::move(rows));
    }

    if (!lateByWindow_.empty()) {
        UpsertRows late;
        late.table = kLateEventsTable;
        late.columns = lateEventsColumns();
        std::string_view name = copyText(arena, table_.name());
        late.cells.reserve(lateByWindow_.size() * 3);
        for (auto [start, events] : lateByWindow_) {
            late.cells.push_back(Cell::ofText(name));
            late.cells.push_back(Cell::ofInt(start));
            late.cells.push_back(Cell::ofInt(static_cast<int64_t>(events)));
        }
        upserts.push_back(std::move(late));
    }
    summary.lateEvents = lateSinceFlush_;

    // dirty_ implies an in-range event, so the max event time is known here.
    UpsertRows watermark;
    watermark.table = kWatermarksTable;
    watermark.columns = watermarksColumns();
    watermark.cells = {Cell::ofText(copyText(arena, table_.contract())), Cell::ofInt(maxEventTimeMs_)};
    upserts.push_back(std::move(watermark));

    // Window starts s with s + width <= watermark are final; the largest is the start of the
    // watermark's window minus one width.
    int64_t last = windowStart(maxEventTimeMs_ - latenessMs_, widthMs_) - widthMs_;
    int64_t from = finalizedThrough_ ? *finalizedThrough_ + widthMs_ : windowStart(kMinEventTimeMs, widthMs_);
    if (from <= last) {
        finalizes.push_back(Finalize{table_.tableName(), from, last});
        finalizedThrough_ = last;
        summary.finalized = true;
    }

    partials_.clear();
    index_.clear();
    lateByWindow_.clear();
    lateSinceFlush_ = 0;
    return summary;
}

}  // namespace sluice::aggregate
