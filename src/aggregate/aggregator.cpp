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

void putLe64(std::string& out, uint64_t v)
{
    for (int i = 0; i < 8; ++i)
        out[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// arena.copy("") has no storage; a text cell should never carry a null pointer, which
// sqlite3_bind_text would read as NULL.
std::string_view copyText(Arena& arena, std::string_view text)
{
    return text.empty() ? std::string_view("") : arena.copy(text);
}

// A snapshot row's state: the session's agg_<name> row, cell by cell: a version byte (1), the
// number of cells (8 bytes little-endian), then per cell its Cell::Kind and its value (integers
// and reals 8 bytes, text and blobs their length in 8 bytes and the bytes).
void encodeRow(std::span<const Cell> row, std::string& out)
{
    out.assign(1, '\1');
    appendLe64(out, row.size());
    for (const Cell& c : row) {
        out += static_cast<char>(c.kind);
        switch (c.kind) {
        case Cell::Kind::kNull: break;
        case Cell::Kind::kInt: appendLe64(out, static_cast<uint64_t>(c.i())); break;
        case Cell::Kind::kReal: appendLe64(out, std::bit_cast<uint64_t>(c.d())); break;
        case Cell::Kind::kText:
        case Cell::Kind::kBlob:
            appendLe64(out, c.text().size());
            out.append(c.text());
            break;
        }
    }
}

// The cells of encodeRow()'s output; text and blob cells point into `in`.
Status decodeRow(std::string_view in, std::vector<Cell>& row)
{
    size_t at = 0;
    auto le64 = [&](uint64_t& v) {
        if (in.size() - at < 8)
            return false;
        v = 0;
        for (int i = 0; i < 8; ++i)
            v |= uint64_t{static_cast<uint8_t>(in[at + static_cast<size_t>(i)])} << (8 * i);
        at += 8;
        return true;
    };
    const Status bad = Status::corruption("a session state is malformed");
    uint64_t n = 0;
    if (in.empty() || in[0] != '\1')
        return bad;
    at = 1;
    if (!le64(n) || n > in.size())
        return bad;
    row.clear();
    for (uint64_t i = 0; i < n; ++i) {
        if (at >= in.size())
            return bad;
        const auto kind = static_cast<Cell::Kind>(in[at++]);
        uint64_t v = 0;
        switch (kind) {
        case Cell::Kind::kNull: row.push_back(Cell::null()); break;
        case Cell::Kind::kInt:
            if (!le64(v))
                return bad;
            row.push_back(Cell::ofInt(static_cast<int64_t>(v)));
            break;
        case Cell::Kind::kReal:
            if (!le64(v))
                return bad;
            row.push_back(Cell::ofReal(std::bit_cast<double>(v)));
            break;
        case Cell::Kind::kText:
        case Cell::Kind::kBlob:
            if (!le64(v) || v > in.size() - at)
                return bad;
            row.push_back(kind == Cell::Kind::kText ? Cell::ofText(in.substr(at, v)) : Cell::ofBlob(in.substr(at, v)));
            at += v;
            break;
        default: return bad;
        }
    }
    return at == in.size() ? Status::ok() : bad;
}

}  // namespace

// Session windows: per group, the sessions not yet written final, sorted by their first event;
// an index of every such session by the bucket of its end (last event + gap), so that a flush
// finds the sessions the watermark closed without looking at the others; and what the next
// snapshot must write (the sessions changed since the last one) and delete.
struct Aggregator::Sessions {
    struct Group;
    struct Session {
        Group* group = nullptr;
        int64_t first = 0;
        int64_t last = 0;
        Accumulator acc;
        // window_start of the rows that stand for it in agg_<name> and in the snapshot (a
        // snapshot writes both): its own, and those of the sessions merged into it since.
        std::vector<int64_t> stored;
        bool changed = false;   // since the last snapshot (then in `changed` at changedSlot)
        uint32_t changedSlot = 0;
        int64_t bucket = 0;
        uint32_t slot = 0;      // in ends[bucket]
    };
    struct Group {
        std::string groupKey;
        std::vector<GroupValue> groups;
        std::vector<std::unique_ptr<Session>> sessions;
    };

    int64_t bucketMs = 1;
    std::unordered_map<std::string, Group, KeyHash, std::equal_to<>> groups;
    std::map<int64_t, std::vector<Session*>> ends;
    std::vector<Session*> changed;
    // Snapshot rows (window_start, group_key) of sessions written final (or merged into one)
    // since the last snapshot: the next snapshot deletes them.
    std::vector<std::pair<int64_t, std::string>> snapshotDeletes;
    size_t open = 0;
    bool sinceSnapshot = false;  // add() since the last snapshot
    bool snapshotDue = true;     // no snapshot holds this state yet (a new aggregation, or rows read back
                                 // from agg_<name>): the next flush writes one

    int64_t bucketOf(int64_t endMs) const
    {
        int64_t b = endMs / bucketMs;
        return endMs % bucketMs < 0 ? b - 1 : b;
    }
    void index(Session& s, int64_t endMs)
    {
        s.bucket = bucketOf(endMs);
        auto& v = ends[s.bucket];
        s.slot = static_cast<uint32_t>(v.size());
        v.push_back(&s);
    }
    void unindex(Session& s)
    {
        auto it = ends.find(s.bucket);
        auto& v = it->second;
        v[s.slot] = v.back();
        v[s.slot]->slot = s.slot;
        v.pop_back();
        if (v.empty())
            ends.erase(it);
    }
    void reindex(Session& s, int64_t endMs)
    {
        if (bucketOf(endMs) == s.bucket)
            return;
        unindex(s);
        index(s, endMs);
    }
    void markChanged(Session& s)
    {
        if (!s.changed) {
            s.changed = true;
            s.changedSlot = static_cast<uint32_t>(changed.size());
            changed.push_back(&s);
        }
    }
    void unmarkChanged(Session& s)
    {
        if (!s.changed)
            return;
        changed[s.changedSlot] = changed.back();
        changed[s.changedSlot]->changedSlot = s.changedSlot;
        changed.pop_back();
        s.changed = false;
    }
};

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
      kind_(table_.window()),
      sizeMs_(table_.windowMs()),
      slideMs_(table_.slideMs()),
      gapMs_(table_.gapMs()),
      latenessMs_(latenessMs),
      consentMask_(consent),
      hash_(hashKey)
{
    if (kind_ == WindowKind::kSession) {
        sessions_ = std::make_unique<Sessions>();
        // About 16 buckets per gap: a flush checks one bucket's sessions one by one.
        sessions_->bucketMs = std::max<int64_t>(1, gapMs_ / 16);
    }
    groupScratch_.resize(table_.groups().size());
    pseudonyms_.resize(table_.groups().size());
    numericScratch_.resize(table_.numericFields().size());
    distinctScratch_.resize(table_.distinctFields().size());
}

Aggregator::Aggregator(Aggregator&&) noexcept = default;
Aggregator& Aggregator::operator=(Aggregator&&) noexcept = default;
Aggregator::~Aggregator() = default;

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
    if (sessions_)
        sessions_->sinceSnapshot = true;
    if ((consent & consentMask_) != consentMask_) {
        ++counters_.filtered;
    } else {
        prepareEvent(fields);
        if (kind_ == WindowKind::kSession)
            addToSession(eventTimeMs);
        else
            addToWindows(eventTimeMs);
    }
    if (!haveMax_ || eventTimeMs > maxEventTimeMs_) {
        maxEventTimeMs_ = eventTimeMs;
        haveMax_ = true;
    }
}

void Aggregator::prepareEvent(std::span<const Value> fields)
{
    // The group key, after 8 bytes that partialFor() fills with a window start.
    keyScratch_.assign(8, '\0');
    keyScratch_ += '[';
    const auto& groups = table_.groups();
    for (size_t g = 0; g < groups.size(); ++g) {
        Value v = normalized(fieldAt(fields, groups[g].fieldIndex), groups[g].type);
        if (groups[g].pseudonym && v.kind == ValueKind::kString) {
            // A PII value never leaves this stage: its keyed hash, as 16 hex digits, stands in.
            hashScratch_.assign(1, 'g');
            hashScratch_.append(v.text);
            const uint64_t h = hash_(hashScratch_);
            std::string& text = pseudonyms_[g];
            text.resize(16);
            for (int i = 0; i < 16; ++i)
                text[static_cast<size_t>(i)] = "0123456789abcdef"[(h >> (60 - 4 * i)) & 0xf];
            v = Value::ofString(text);
        }
        groupScratch_[g] = v;
        if (g)
            keyScratch_ += ',';
        appendJson(keyScratch_, v);
    }
    keyScratch_ += ']';

    const auto& numeric = table_.numericFields();
    for (size_t k = 0; k < numeric.size(); ++k)
        numericScratch_[k] = normalized(fieldAt(fields, numeric[k].fieldIndex),
                                        numeric[k].integer ? FieldType::kInteger : FieldType::kNumber);

    const auto& distinct = table_.distinctFields();
    for (size_t k = 0; k < distinct.size(); ++k) {
        Value v = normalized(fieldAt(fields, distinct[k].fieldIndex), distinct[k].type);
        if (!v.present()) {
            distinctScratch_[k].reset();
            continue;
        }
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
        distinctScratch_[k] = hash_(hashScratch_);
    }

    // The group's people, by a fingerprint tagged apart from distinct()'s hashes.
    const Value& subject = fieldAt(fields, table_.subjectFieldIndex());
    if (subject.kind == ValueKind::kString) {
        hashScratch_.assign(1, 'p');
        hashScratch_.append(subject.text);
        subjectScratch_ = hash_(hashScratch_);
    } else {
        subjectScratch_.reset();
    }
}

void Aggregator::addPrepared(Accumulator& acc) const
{
    ++acc.count;
    const auto& numeric = table_.numericFields();
    for (size_t k = 0; k < numeric.size(); ++k) {
        const Value& v = numericScratch_[k];
        if (!v.present())
            continue;
        NumericState& s = acc.numeric[k];
        if (numeric[k].integer) {
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
    for (size_t k = 0; k < distinctScratch_.size(); ++k)
        if (distinctScratch_[k])
            acc.sketches[k].add(*distinctScratch_[k]);
    if (subjectScratch_)
        acc.subjects.add(*subjectScratch_);
}

void Aggregator::merge(Accumulator& into, const Accumulator& from) const
{
    into.count += from.count;
    for (size_t k = 0; k < into.numeric.size(); ++k) {
        NumericState& a = into.numeric[k];
        const NumericState& b = from.numeric[k];
        if (b.present == 0)
            continue;
        if (a.present == 0) {
            a = b;
            continue;
        }
        a.intSum += b.intSum;
        a.realSum += b.realSum;
        a.intMin = std::min(a.intMin, b.intMin);
        a.intMax = std::max(a.intMax, b.intMax);
        a.realMin = std::min(a.realMin, b.realMin);
        a.realMax = std::max(a.realMax, b.realMax);
        a.present += b.present;
    }
    for (size_t k = 0; k < into.sketches.size(); ++k)
        into.sketches[k].merge(from.sketches[k]);
    into.subjects.merge(from.subjects);
}

std::vector<Aggregator::GroupValue> Aggregator::groupValues() const
{
    std::vector<GroupValue> out(groupScratch_.size());
    for (size_t g = 0; g < groupScratch_.size(); ++g) {
        const Value& v = groupScratch_[g];
        out[g].kind = v.kind;
        out[g].i = v.i;
        out[g].d = v.d;
        out[g].b = v.b;
        out[g].text.assign(v.text);
    }
    return out;
}

void Aggregator::addToWindows(int64_t eventTimeMs)
{
    // Windows start every slide; the event's windows start in (t - size, t].
    const int64_t newest = windowStart(eventTimeMs, slideMs_);
    bool aggregated = false;
    for (int64_t start = newest; start > eventTimeMs - sizeMs_; start -= slideMs_) {
        if (haveMax_ && start + sizeMs_ <= maxEventTimeMs_ - latenessMs_) {
            ++counters_.late;
            ++lateByWindow_[start];
            ++lateSinceFlush_;
        } else {
            addPrepared(partialFor(start).acc);
            aggregated = true;
        }
    }
    counters_.aggregated += aggregated;
}

Aggregator::Partial& Aggregator::partialFor(int64_t windowStart)
{
    putLe64(keyScratch_, static_cast<uint64_t>(windowStart));
    auto found = index_.find(std::string_view(keyScratch_));
    if (found != index_.end())
        return partials_[found->second];

    Partial p;
    p.windowStart = windowStart;
    p.groupKey.assign(keyScratch_, 8);
    p.groups = groupValues();
    p.acc.numeric.resize(table_.numericFields().size());
    p.acc.sketches.resize(table_.distinctFields().size());
    index_.emplace(keyScratch_, static_cast<uint32_t>(partials_.size()));
    partials_.push_back(std::move(p));
    return partials_.back();
}

void Aggregator::addToSession(int64_t t)
{
    Sessions& st = *sessions_;
    const std::string_view key = std::string_view(keyScratch_).substr(8);
    auto found = st.groups.find(key);
    const std::optional<int64_t> watermark = watermarkMs();
    auto isFinal = [&](const Sessions::Session& s) { return watermark && s.last + gapMs_ <= *watermark; };

    // The open sessions this event bridges (within gap of it) are contiguous in start order.
    size_t lo = 0, hi = 0;  // [lo, hi) of group.sessions
    if (found != st.groups.end()) {
        auto& sessions = found->second.sessions;
        lo = sessions.size();
        for (size_t i = 0; i < sessions.size(); ++i) {
            const Sessions::Session& s = *sessions[i];
            if (isFinal(s) || t < s.first - gapMs_ || t > s.last + gapMs_)
                continue;
            lo = std::min(lo, i);
            hi = i + 1;
        }
        if (lo > hi)
            lo = hi = 0;
    }
    if (lo == hi && watermark && t + gapMs_ <= *watermark) {
        // Its own session would already be over: late.
        ++counters_.late;
        ++lateByWindow_[t];
        ++lateSinceFlush_;
        return;
    }
    ++counters_.aggregated;
    if (found == st.groups.end()) {
        Sessions::Group g;
        g.groupKey.assign(key);
        g.groups = groupValues();
        found = st.groups.emplace(g.groupKey, std::move(g)).first;
    }
    Sessions::Group& group = found->second;
    auto& sessions = group.sessions;
    Sessions::Session* target;
    if (lo == hi) {
        auto s = std::make_unique<Sessions::Session>();
        s->group = &group;
        s->first = s->last = t;
        s->acc.numeric.resize(table_.numericFields().size());
        s->acc.sketches.resize(table_.distinctFields().size());
        st.index(*s, t + gapMs_);
        ++st.open;
        target = s.get();
        auto at = std::upper_bound(sessions.begin(), sessions.end(), t,
                                   [](int64_t v, const std::unique_ptr<Sessions::Session>& x) { return v < x->first; });
        sessions.insert(at, std::move(s));
    } else {
        target = sessions[lo].get();
        for (size_t i = lo + 1; i < hi; ++i) {
            Sessions::Session& other = *sessions[i];
            merge(target->acc, other.acc);
            target->first = std::min(target->first, other.first);
            target->last = std::max(target->last, other.last);
            target->stored.insert(target->stored.end(), other.stored.begin(), other.stored.end());
            st.unmarkChanged(other);
            st.unindex(other);
            --st.open;
        }
        sessions.erase(sessions.begin() + static_cast<long>(lo) + 1, sessions.begin() + static_cast<long>(hi));
        target->first = std::min(target->first, t);
        target->last = std::max(target->last, t);
        st.reindex(*target, target->last + gapMs_);
    }
    addPrepared(target->acc);
    st.markChanged(*target);
}

void Aggregator::writeGroups(const std::vector<GroupValue>& groups, Cell* row, Arena& arena) const
{
    const auto& columns = table_.groups();
    for (size_t g = 0; g < columns.size(); ++g) {
        const GroupValue& v = groups[g];
        Cell& cell = row[columns[g].column];
        switch (v.kind) {
        case ValueKind::kString: cell = Cell::ofText(copyText(arena, v.text)); break;
        case ValueKind::kInt: cell = Cell::ofInt(v.i); break;
        case ValueKind::kReal: cell = Cell::ofReal(v.d); break;
        case ValueKind::kBool: cell = Cell::ofInt(v.b ? 1 : 0); break;
        default: cell = Cell::null(); break;
        }
    }
}

void Aggregator::writeMetrics(Accumulator& acc, Cell* c, Arena& arena)
{
    c[table_.countColumn()] = Cell::ofInt(acc.count);
    const auto& numeric = table_.numericFields();
    for (size_t k = 0; k < numeric.size(); ++k) {
        const NumericField& nf = numeric[k];
        const NumericState& s = acc.numeric[k];
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
            c[nf.minColumn] = s.present == 0 ? Cell::null() : nf.integer ? Cell::ofInt(s.intMin) : Cell::ofReal(s.realMin);
        if (nf.maxColumn >= 0)
            c[nf.maxColumn] = s.present == 0 ? Cell::null() : nf.integer ? Cell::ofInt(s.intMax) : Cell::ofReal(s.realMax);
    }
    const auto& distinct = table_.distinctFields();
    for (size_t k = 0; k < distinct.size(); ++k) {
        HyperLogLog& sketch = acc.sketches[k];
        sketch.compact();
        blobScratch_.clear();
        sketch.serialize(blobScratch_);
        c[distinct[k].sketchColumn] = Cell::ofBlob(arena.copy(blobScratch_));
        c[distinct[k].estimateColumn] = Cell::ofReal(sketch.estimate());
    }
    acc.subjects.compact();
    c[table_.subjectsColumn()] = Cell::ofInt(static_cast<int64_t>(acc.subjects.count()));
    blobScratch_.clear();
    acc.subjects.serialize(blobScratch_);
    c[table_.subjectSetColumn()] = Cell::ofBlob(arena.copy(blobScratch_));
}

FlushSummary Aggregator::flush(Arena& arena, WriteBatch& out, std::optional<uint64_t> snapshotBatch)
{
    FlushSummary summary;
    if (!(sessions_ && (sessions_->sinceSnapshot || sessions_->snapshotDue)))
        snapshotBatch.reset();
    if (!dirty_ && !snapshotBatch)
        return summary;
    const bool added = dirty_;
    dirty_ = false;

    if (kind_ == WindowKind::kSession)
        flushSessions(&arena, &out, summary, snapshotBatch);
    else
        flushWindows(arena, out, summary);
    if (!added)
        return summary;

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
        out.upserts.push_back(std::move(late));
    }
    summary.lateEvents = lateSinceFlush_;
    lateByWindow_.clear();
    lateSinceFlush_ = 0;

    // dirty_ implies an in-range event, so the max event time is known here.
    UpsertRows watermark;
    watermark.table = kWatermarksTable;
    watermark.columns = watermarksColumns();
    watermark.cells = {Cell::ofText(copyText(arena, table_.contract())), Cell::ofInt(maxEventTimeMs_)};
    out.upserts.push_back(std::move(watermark));
    return summary;
}

bool Aggregator::snapshotPending() const
{
    return sessions_ && (sessions_->sinceSnapshot || sessions_->snapshotDue);
}

bool Aggregator::snapshotDue() const
{
    return sessions_ && sessions_->snapshotDue;
}

void Aggregator::replayed()
{
    if (sessions_) {
        FlushSummary ignored;
        flushSessions(nullptr, nullptr, ignored, std::nullopt);
    }
    dirty_ = false;
    lateByWindow_.clear();
    lateSinceFlush_ = 0;
}

UpsertRows Aggregator::tableRows(size_t rows) const
{
    UpsertRows out;
    out.table = table_.tableName();
    out.columns = table_.columns();
    out.cells.resize(rows * out.columns.size());
    return out;
}

void Aggregator::flushWindows(Arena& arena, WriteBatch& out, FlushSummary& summary)
{
    if (!partials_.empty()) {
        std::vector<uint32_t> order(partials_.size());
        std::iota(order.begin(), order.end(), 0u);
        std::sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) {
            const Partial& x = partials_[a];
            const Partial& y = partials_[b];
            return x.windowStart != y.windowStart ? x.windowStart < y.windowStart : x.groupKey < y.groupKey;
        });

        UpsertRows rows = tableRows(partials_.size());
        const size_t width = rows.columns.size();
        Cell* c = rows.cells.data();
        for (uint32_t i : order) {
            Partial& p = partials_[i];
            c[AggregationTable::kWindowStartColumn] = Cell::ofInt(p.windowStart);
            c[AggregationTable::kGroupKeyColumn] = Cell::ofText(copyText(arena, p.groupKey));
            writeGroups(p.groups, c, arena);
            writeMetrics(p.acc, c, arena);
            c[table_.finalColumn()] = Cell::ofInt(0);
            c += width;
        }
        summary.groupRows = partials_.size();
        out.upserts.push_back(std::move(rows));
    }
    partials_.clear();
    index_.clear();

    // Window starts s with s + size <= watermark are final; the largest is the start, on the
    // slide grid, of the window that ends at the watermark or just before it.
    const int64_t last = windowStart(maxEventTimeMs_ - latenessMs_ - sizeMs_, slideMs_);
    const int64_t from = finalizedThrough_ ? *finalizedThrough_ + slideMs_
                                           : windowStart(kMinEventTimeMs, slideMs_) - (sizeMs_ - slideMs_);
    if (from <= last) {
        out.finalizes.push_back(Finalize{table_.tableName(), from, last});
        finalizedThrough_ = last;
        summary.finalized = true;
    }
}

void Aggregator::flushSessions(Arena* arena, WriteBatch* out, FlushSummary& summary,
                               std::optional<uint64_t> snapshotBatch)
{
    Sessions& st = *sessions_;
    using Session = Sessions::Session;
    auto byStart = [](const Session* a, const Session* b) {
        return a->first != b->first ? a->first < b->first : a->group->groupKey < b->group->groupKey;
    };

    // Sessions the watermark closed: every one of a bucket that ends at or before it, and the
    // ones of the bucket it falls in whose end has passed. They are written final now.
    std::vector<Session*> closing;
    if (haveMax_) {
        const int64_t watermark = maxEventTimeMs_ - latenessMs_;
        for (auto it = st.ends.begin(); it != st.ends.end() && it->first * st.bucketMs <= watermark; ++it) {
            const bool whole = (it->first + 1) * st.bucketMs - 1 <= watermark;
            for (Session* s : it->second)
                if (whole || s->last + gapMs_ <= watermark)
                    closing.push_back(s);
        }
    }
    std::sort(closing.begin(), closing.end(), byStart);
    // Rows of agg_<name> that no longer stand for a session (merged away, or the session now
    // starts earlier), deleted before the new rows are written (which may reuse a key).
    std::vector<std::pair<int64_t, std::string_view>> deletes;
    for (Session* s : closing) {
        st.unmarkChanged(*s);
        for (int64_t start : s->stored) {
            if (start != s->first)
                deletes.emplace_back(start, s->group->groupKey);
            st.snapshotDeletes.emplace_back(start, s->group->groupKey);
        }
    }
    // A snapshot: every open session changed since the last one, into agg_<name> (final = 0)
    // and into the snapshot rows.
    std::vector<Session*> open;
    if (snapshotBatch) {
        open = st.changed;
        std::sort(open.begin(), open.end(), byStart);
        for (Session* s : open) {
            for (int64_t start : s->stored) {
                if (start != s->first) {
                    deletes.emplace_back(start, s->group->groupKey);
                    st.snapshotDeletes.emplace_back(start, s->group->groupKey);
                }
            }
        }
    }

    if (out) {
        if (!deletes.empty()) {
            std::sort(deletes.begin(), deletes.end());
            deletes.erase(std::unique(deletes.begin(), deletes.end()), deletes.end());
            DeleteRows del;
            del.table = table_.tableName();
            del.keyColumns = {"window_start", "group_key"};
            del.cells.reserve(deletes.size() * 2);
            for (const auto& [start, key] : deletes) {
                del.cells.push_back(Cell::ofInt(start));
                del.cells.push_back(Cell::ofText(copyText(*arena, key)));
            }
            summary.deletedRows = deletes.size();
            out->deletes.push_back(std::move(del));
        }
        const size_t rowCount = closing.size() + open.size();
        if (rowCount) {
            UpsertRows upsert = tableRows(rowCount);
            const size_t width = upsert.columns.size();
            UpsertRows states;
            states.table = kSessionSnapshotRowsTable;
            states.columns = sessionSnapshotRowsColumns();
            states.cells.reserve(open.size() * states.columns.size());
            const std::string_view name = copyText(*arena, table_.name());
            Cell* c = upsert.cells.data();
            for (size_t i = 0; i < rowCount; ++i) {
                const bool final = i < closing.size();
                Session* s = final ? closing[i] : open[i - closing.size()];
                const std::string_view key = copyText(*arena, s->group->groupKey);
                c[AggregationTable::kWindowStartColumn] = Cell::ofInt(s->first);
                c[AggregationTable::kGroupKeyColumn] = Cell::ofText(key);
                c[table_.windowEndColumn()] = Cell::ofInt(s->last + gapMs_);
                writeGroups(s->group->groups, c, *arena);
                writeMetrics(s->acc, c, *arena);
                c[table_.finalColumn()] = Cell::ofInt(final ? 1 : 0);
                if (!final) {
                    encodeRow(std::span<const Cell>(c, width), blobScratch_);
                    states.cells.push_back(Cell::ofText(name));
                    states.cells.push_back(Cell::ofInt(s->first));
                    states.cells.push_back(Cell::ofText(key));
                    states.cells.push_back(Cell::ofBlob(arena->copy(blobScratch_)));
                }
                c += width;
                summary.finalized |= final;
            }
            summary.groupRows = rowCount;
            out->upserts.push_back(std::move(upsert));
            if (!states.cells.empty())
                out->upserts.push_back(std::move(states));
        }
        if (snapshotBatch) {
            const std::string_view name = copyText(*arena, table_.name());
            if (!st.snapshotDeletes.empty()) {
                std::sort(st.snapshotDeletes.begin(), st.snapshotDeletes.end());
                st.snapshotDeletes.erase(std::unique(st.snapshotDeletes.begin(), st.snapshotDeletes.end()),
                                         st.snapshotDeletes.end());
                DeleteRows del;
                del.table = kSessionSnapshotRowsTable;
                del.keyColumns = {"aggregation", "window_start", "group_key"};
                del.cells.reserve(st.snapshotDeletes.size() * 3);
                for (const auto& [start, key] : st.snapshotDeletes) {
                    del.cells.push_back(Cell::ofText(name));
                    del.cells.push_back(Cell::ofInt(start));
                    del.cells.push_back(Cell::ofText(copyText(*arena, key)));
                }
                out->deletes.push_back(std::move(del));
            }
            UpsertRows record;
            record.table = kSessionSnapshotsTable;
            record.columns = sessionSnapshotsColumns();
            record.cells = {Cell::ofText(name), Cell::ofInt(static_cast<int64_t>(*snapshotBatch)),
                            haveMax_ ? Cell::ofInt(maxEventTimeMs_) : Cell::null()};
            out->upserts.push_back(std::move(record));
            summary.snapshot = true;
        }
    }

    if (snapshotBatch) {
        for (Session* s : open) {
            s->stored.assign(1, s->first);
            s->changed = false;
        }
        st.changed.clear();
        st.snapshotDeletes.clear();
        st.sinceSnapshot = false;
        st.snapshotDue = false;
    }
    // Final sessions never change again: they leave memory.
    for (Session* s : closing) {
        Sessions::Group& group = *s->group;
        st.unindex(*s);
        --st.open;
        auto& sessions = group.sessions;
        sessions.erase(std::find_if(sessions.begin(), sessions.end(), [s](const auto& p) { return p.get() == s; }));
        if (sessions.empty())
            st.groups.erase(group.groupKey);
    }
}

std::string Aggregator::openWindowsQuery() const
{
    if (kind_ != WindowKind::kSession)
        return {};
    std::string sql = "SELECT ";
    const auto& columns = table_.columns();
    for (size_t i = 0; i < columns.size(); ++i)
        sql += (i ? ", " : "") + quoteIdent(columns[i].name);
    return sql + " FROM " + quoteIdent(table_.tableName()) + " WHERE \"final\" = 0";
}

Status Aggregator::readMetrics(std::span<const Cell> row, Accumulator& acc) const
{
    auto intOf = [&](int column) { return row[static_cast<size_t>(column)].i(); };
    auto numberOf = [&](int column) {
        const Cell& c = row[static_cast<size_t>(column)];
        return c.kind == Cell::Kind::kInt ? static_cast<double>(c.i()) : c.d();
    };
    acc.count = intOf(table_.countColumn());
    acc.numeric.assign(table_.numericFields().size(), {});
    for (size_t k = 0; k < acc.numeric.size(); ++k) {
        const NumericField& nf = table_.numericFields()[k];
        NumericState& s = acc.numeric[k];
        if (nf.sumColumn >= 0) {
            s.present = intOf(nf.countColumn);
            const Cell& sum = row[static_cast<size_t>(nf.sumColumn)];
            if (nf.integer && sum.kind == Cell::Kind::kInt)
                s.intSum = sum.i();
            else if (nf.integer)
                s.intSum = sum.d();  // a sum beyond int64 that SQLite holds as REAL
            else
                s.realSum = numberOf(nf.sumColumn);
        }
        for (int column : {nf.minColumn, nf.maxColumn}) {
            if (column < 0)
                continue;
            const Cell& c = row[static_cast<size_t>(column)];
            if (c.kind == Cell::Kind::kNull)
                continue;
            if (nf.sumColumn < 0)
                s.present = 1;  // without n_f, "present" only says that min and max are known
            const bool isMin = column == nf.minColumn;
            if (nf.integer)
                (isMin ? s.intMin : s.intMax) = c.i();
            else
                (isMin ? s.realMin : s.realMax) = numberOf(column);
        }
    }
    acc.sketches.clear();
    for (const DistinctField& d : table_.distinctFields()) {
        auto sketch = HyperLogLog::parse(row[static_cast<size_t>(d.sketchColumn)].text());
        if (!sketch)
            return sketch.status();
        acc.sketches.push_back(std::move(*sketch));
    }
    auto subjects = SubjectSet::parse(row[static_cast<size_t>(table_.subjectSetColumn())].text());
    if (!subjects)
        return subjects.status();
    acc.subjects = std::move(*subjects);
    return Status::ok();
}

Status Aggregator::restoreOpenWindow(std::span<const Cell> row)
{
    // No snapshot holds these rows yet: the next one writes them all.
    return restoreSession(row, true);
}

void Aggregator::restoreSnapshot(std::optional<int64_t> maxEventTimeMs)
{
    if (maxEventTimeMs)
        setMaxEventTimeMs(*maxEventTimeMs);
    if (sessions_)
        sessions_->snapshotDue = false;
}

Status Aggregator::restoreSnapshotRow(std::string_view state)
{
    std::vector<Cell> row;
    SLUICE_RETURN_IF_ERROR(decodeRow(state, row).withContext(table_.tableName() + " snapshot"));
    return restoreSession(row, false);
}

Status Aggregator::restoreSession(std::span<const Cell> row, bool changed)
{
    if (kind_ != WindowKind::kSession)
        return Status::ok();
    if (row.size() != table_.columns().size())
        return Status::corruption(table_.tableName() + ": an open window row has " + std::to_string(row.size()) +
                                  " columns, not " + std::to_string(table_.columns().size()));
    Sessions& st = *sessions_;
    const std::string key(row[AggregationTable::kGroupKeyColumn].text());
    auto found = st.groups.find(key);
    if (found == st.groups.end()) {
        Sessions::Group g;
        g.groupKey = key;
        const auto& columns = table_.groups();
        g.groups.resize(columns.size());
        for (size_t i = 0; i < columns.size(); ++i) {
            const Cell& c = row[static_cast<size_t>(columns[i].column)];
            GroupValue& v = g.groups[i];
            switch (c.kind) {
            case Cell::Kind::kText: v.kind = ValueKind::kString; v.text.assign(c.text()); break;
            case Cell::Kind::kReal: v.kind = ValueKind::kReal; v.d = c.d(); break;
            case Cell::Kind::kInt:
                if (columns[i].type == FieldType::kBoolean) {
                    v.kind = ValueKind::kBool;
                    v.b = c.i() != 0;
                } else if (columns[i].type == FieldType::kNumber) {
                    v.kind = ValueKind::kReal;
                    v.d = static_cast<double>(c.i());
                } else {
                    v.kind = ValueKind::kInt;
                    v.i = c.i();
                }
                break;
            default: break;
            }
        }
        found = st.groups.emplace(key, std::move(g)).first;
    }
    auto s = std::make_unique<Sessions::Session>();
    s->group = &found->second;
    s->first = row[AggregationTable::kWindowStartColumn].i();
    s->last = row[static_cast<size_t>(table_.windowEndColumn())].i() - gapMs_;
    s->stored.assign(1, s->first);
    SLUICE_RETURN_IF_ERROR(readMetrics(row, s->acc).withContext(table_.tableName()));
    st.index(*s, s->last + gapMs_);
    ++st.open;
    if (changed)
        st.markChanged(*s);
    auto& sessions = found->second.sessions;
    auto at = std::upper_bound(sessions.begin(), sessions.end(), s->first,
                               [](int64_t v, const std::unique_ptr<Sessions::Session>& x) { return v < x->first; });
    sessions.insert(at, std::move(s));
    return Status::ok();
}

bool Aggregator::adoptOpenWindows(Aggregator& previous)
{
    if (kind_ != previous.kind_ || gapMs_ != previous.gapMs_ ||
        table_.createTableSql() != previous.table_.createTableSql())
        return false;
    if (kind_ == WindowKind::kSession)
        std::swap(sessions_, previous.sessions_);
    return true;
}

size_t Aggregator::openWindows() const
{
    return sessions_ ? sessions_->open : 0;
}

}  // namespace sluice::aggregate
