// A small pipeline (one contract, one derived output, one aggregation-like table), a builder of
// WriteBatches for it, and query helpers. Databases live in a TempDir.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/commit.h"
#include "core/spec.h"
#include "store/batch_writer.h"
#include "store/db.h"
#include "store/schema.h"
#include "support/temp_dir.h"

namespace sluice::store::testing {

using sluice::testing::TempDir;

inline constexpr const char* kRef = "t/shop/1.0.0";
inline constexpr const char* kEventsTable = "events_t_shop_1_0_0";
inline constexpr const char* kDerivedTable = "derived_out";
inline constexpr const char* kAggTable = "agg_t";

inline ContractSpec contract(bool extraField = false)
{
    ContractSpec c;
    c.ref = kRef;
    c.keyField = "sid";
    c.path = "contracts/shop.json";
    auto field = [&](const char* name, FieldType type, int pii = -1) {
        FieldSpec f;
        f.name = name;
        f.type = type;
        f.pii = pii;
        c.fields.push_back(f);
    };
    field("sid", FieldType::kString, 0);
    field("country", FieldType::kString);
    field("total", FieldType::kNumber);
    field("items", FieldType::kInteger);
    if (extraField)
        field("device", FieldType::kString);
    c.keyFieldIndex = 0;
    c.retentionDays = 30;
    c.definition = extraField ? R"({"ref":"t/shop/1.0.0","v":2})" : R"({"ref":"t/shop/1.0.0","v":1})";
    return c;
}

inline OutputSpec output()
{
    OutputSpec o;
    o.name = "out";
    o.contract = kRef;
    o.purposes = {0};
    o.path = "pipelines/shop.json";
    return o;
}

// The fields a derived row of `o` keeps (privacy::derivedRowFields(), for a granular output):
// the PII of its levels, masked fields.
inline std::vector<bool> ownFields(const ContractSpec& c, const OutputSpec& o = output())
{
    std::vector<bool> own;
    for (const FieldSpec& f : c.fields) {
        const bool decrypted = f.isPii() && std::count(o.purposes.begin(), o.purposes.end(), f.pii) > 0;
        const bool masked = std::count(o.maskedFields.begin(), o.maskedFields.end(), f.name) > 0;
        own.push_back(decrypted || (!f.isPii() && masked));
    }
    return own;
}

inline PipelinePtr pipeline(bool extraField = false)
{
    auto p = std::make_shared<PipelineSpec>();
    p->contracts = {contract(extraField)};
    p->outputs = {output()};
    AggregationSpec a;
    a.name = "t";
    a.contract = kRef;
    p->aggregations = {a};
    return p;
}

// An aggregation-shaped table that exercises every MergeOp.
inline TableDef aggTable()
{
    TableDef t;
    t.name = kAggTable;
    t.createSql =
        "CREATE TABLE IF NOT EXISTS \"agg_t\"(window_start INTEGER NOT NULL, group_key TEXT NOT NULL, n INTEGER, lo "
        "REAL, hi REAL, label TEXT, first_seen TEXT, final INTEGER NOT NULL DEFAULT 0, sketch BLOB, estimate REAL, "
        "PRIMARY KEY(window_start, group_key))";
    return t;
}

inline std::vector<UpsertColumn> aggColumns()
{
    return {{"window_start", MergeOp::kKey, -1}, {"group_key", MergeOp::kKey, -1}, {"n", MergeOp::kAdd, -1},
            {"lo", MergeOp::kMin, -1},           {"hi", MergeOp::kMax, -1},        {"label", MergeOp::kSet, -1},
            {"first_seen", MergeOp::kKeep, -1},  {"sketch", MergeOp::kHllMerge, -1},
            {"estimate", MergeOp::kHllEstimate, 7}};
}

inline std::vector<TableDef> tables(bool extraField = false)
{
    const ContractSpec c = contract(extraField);
    return {eventsTable(c), derivedTable(output(), c, ownFields(c)), aggTable()};
}

// Simple stand-ins for the sketch functions: a "sketch" is a set of bytes, merge is the union,
// the estimate is the number of bytes. NULL reads as the empty set.
inline SketchFunctions sketches()
{
    SketchFunctions f;
    f.merge = [](std::optional<std::string_view> a, std::optional<std::string_view> b) -> Result<std::string> {
        std::set<char> s;
        for (auto v : {a, b})
            if (v)
                s.insert(v->begin(), v->end());
        if (s.count('!'))
            return Status::corruption("bad sketch");
        return std::string(s.begin(), s.end());
    };
    f.estimate = [](std::optional<std::string_view> a) -> Result<double> {
        return a ? static_cast<double>(a->size()) : 0.0;
    };
    // Subject sets alike, counted as integers.
    f.subjectsMerge = [merge = f.merge](std::optional<std::string_view> a,
                                         std::optional<std::string_view> b) -> Result<std::string> {
        auto merged = merge(a, b);
        return merged ? merged : Result<std::string>(Status::corruption("bad subject set"));
    };
    f.subjectsCount = [](std::optional<std::string_view> a) -> Result<int64_t> {
        if (a && a->find('!') != std::string_view::npos)
            return Status::corruption("bad subject set");
        return a ? static_cast<int64_t>(a->size()) : 0;
    };
    return f;
}

inline std::unique_ptr<BatchWriter> openWriter(const std::string& path, const char* vfs = nullptr)
{
    BatchWriter::Options o;
    o.path = path;
    o.vfs = vfs;
    o.sketches = sketches();
    auto w = BatchWriter::open(o);
    INFO((w.isOk() ? "" : w.status().message()));
    REQUIRE(w.isOk());
    return std::move(*w);
}

inline std::unique_ptr<BatchWriter> openWriterWithSchema(const std::string& path, const char* vfs = nullptr)
{
    auto w = openWriter(path, vfs);
    Status s = w->applySchema(*pipeline(), tables(), 1'700'000'000'000);
    INFO(s.message());
    REQUIRE(s.isOk());
    return w;
}

inline Db openDb(const std::string& path, bool readOnly = false)
{
    Db::Options o;
    o.readOnly = readOnly;
    auto db = Db::open(path, o);
    INFO((db.isOk() ? "" : db.status().message()));
    REQUIRE(db.isOk());
    return std::move(*db);
}

inline int64_t queryInt(Db& db, const std::string& sql)
{
    auto v = db.queryInt(sql);
    INFO(sql << ": " << (v.isOk() ? "" : v.status().message()));
    REQUIRE(v.isOk());
    REQUIRE(v->has_value());
    return **v;
}

inline std::optional<std::string> queryText(Db& db, const std::string& sql)
{
    auto v = db.queryText(sql);
    INFO(sql << ": " << (v.isOk() ? "" : v.status().message()));
    REQUIRE(v.isOk());
    return *v;
}

inline bool isNull(Db& db, const std::string& sql)
{
    auto stmt = db.prepare(sql);
    REQUIRE(stmt.isOk());
    auto row = stmt->step();
    REQUIRE(row.isOk());
    REQUIRE(*row);
    return stmt->columnIsNull(0);
}

inline int64_t count(Db& db, const std::string& table, const std::string& where = "")
{
    return queryInt(db, "SELECT count(*) FROM \"" + table + "\"" + (where.empty() ? "" : " WHERE " + where));
}

// "e" + std::to_string(n), written so that GCC 12 does not warn (a -Wrestrict false positive).
inline std::string numbered(const char* prefix, uint64_t n)
{
    std::string s(prefix);
    s.append(std::to_string(n));
    return s;
}

inline Digest digest(uint8_t fill)
{
    Digest d;
    d.fill(fill);
    d[0] = 0xA5;
    return d;
}

// Column positions in the events and derived tables' insert lists.
enum EventColumn : size_t { kBatchId, kEventId, kEventTime, kReceivedAt, kKeyLink, kConsent, kSid, kCountry, kTotal, kItems };

// Builds the WriteBatch of one batch of the pipeline above.
class BatchBuilder {
public:
    static constexpr int kEvents = 0;
    static constexpr int kDerived = 1;

    explicit BatchBuilder(uint64_t id, bool withSchema = false)
    {
        wb_.record.id = id;
        wb_.record.openedAtMs = 1'700'000'000'000 + static_cast<int64_t>(id) * 1000;
        wb_.record.closedAtMs = wb_.record.openedAtMs + 200;
        wb_.record.closeReason = CloseReason::kDelay;
        wb_.arenas.emplace_back();
        const auto t = tables();
        TableRows events;
        events.table = t[0].name;
        events.width = t[0].insertColumns.size();
        TableRows derived;
        derived.table = t[1].name;
        derived.width = 1 + t[0].insertColumns.size();  // event_seq, then the event's columns
        derived.parent = kEvents;
        derived.parentColumn = 0;  // event_seq
        derived.keyLinkColumn = 1 + kKeyLink;
        derived.dropIfKeyShredded = true;
        wb_.inserts = {std::move(events), std::move(derived)};
        if (withSchema) {
            auto change = std::make_shared<SchemaChange>();
            change->pipeline = pipeline();
            change->tables = tables();
            wb_.schema = change;
        }
    }

    std::string_view text(const std::string& s) { return wb_.arenas[0].copy(s); }

    // Adds an event row; returns its index among this batch's events.
    size_t event(const std::string& eventId, const std::string& keyLink, const std::string& country, double total,
                 std::optional<int64_t> items = std::nullopt)
    {
        TableRows& t = wb_.inserts[kEvents];
        Cell* row = t.addRow();
        row[kBatchId] = Cell::ofInt(static_cast<int64_t>(wb_.record.id));
        row[kEventId] = eventId.empty() ? Cell::null() : Cell::ofText(text(eventId));
        row[kEventTime] = Cell::ofInt(1'700'000'000'000);
        row[kReceivedAt] = Cell::ofInt(1'700'000'000'001);
        row[kKeyLink] = Cell::ofText(text(keyLink));
        row[kConsent] = Cell::ofText("[0,1]");
        row[kSid] = Cell::ofText(text("enc(" + eventId + ")"));
        row[kCountry] = Cell::ofText(text(country));
        row[kTotal] = Cell::ofReal(total);
        row[kItems] = items ? Cell::ofInt(*items) : Cell::null();
        wb_.record.received++;
        wb_.record.committed++;
        return t.rows() - 1;
    }

    // Adds a derived row for event `eventRow` of this batch (its sid in clear).
    void derived(size_t eventRow, const std::string& keyLink, const std::string& sid)
    {
        TableRows& t = wb_.inserts[kDerived];
        const TableRows& events = wb_.inserts[kEvents];
        Cell* row = t.addRow();
        row[0] = Cell::ofInt(static_cast<int64_t>(eventRow));
        const Cell* e = events.cells.data() + eventRow * events.width;
        for (size_t c = 0; c < events.width; ++c)
            row[1 + c] = e[c];
        row[1 + kKeyLink] = Cell::ofText(text(keyLink));
        row[1 + kSid] = Cell::ofText(text(sid));
    }

    void key(const std::string& link, uint32_t keyId, const std::string& kind = "data", int64_t createdAt = 1'000,
             int64_t expiresAt = 2'000, const std::string& contract = kRef, uint8_t lookup = 1)
    {
        KeyRecord k;
        k.keyLink = link;
        k.keyId = keyId;
        k.contract = kind == "data" ? contract : "";
        k.kind = kind;
        k.lookup = digest(lookup);
        k.wrapped = std::string("wrapped\0", 8) + link;
        k.createdAtMs = createdAt;
        k.expiresAtMs = expiresAt;
        wb_.keys.push_back(k);
        wb_.record.keysCreated++;
    }

    void subject(const std::string& link, uint8_t subject) { wb_.subjects.push_back({link, digest(subject)}); }

    void deadLetter(Reason reason, const std::string& message, const std::string& producer = "", int64_t seq = -1,
                    int32_t eventIndex = -1, const std::string& input = "", const std::string& inputKeyLink = "",
                    int64_t receivedAt = 1'700'000'000'002)
    {
        DeadLetter d;
        d.reason = reason;
        d.message = message;
        d.producer = producer;
        d.seq = seq;
        d.eventIndex = eventIndex;
        d.input = input;
        d.inputKeyLink = inputKeyLink;
        d.inputBytes = static_cast<uint32_t>(input.size() + 10);
        d.receivedAtMs = receivedAt;
        if (!producer.empty())
            d.contract = kRef;
        wb_.deadLetters.push_back(d);
        wb_.record.received++;
        wb_.record.rejected++;
        wb_.rejectedByReason[static_cast<size_t>(reason)]++;
    }

    void mark(const std::string& producer, uint64_t seq, uint32_t accepted = 1, uint32_t rejected = 0)
    {
        wb_.marks.push_back({producer, seq, accepted, rejected});
        RequestOutcome o;
        o.producer = producer;
        o.seq = seq;
        o.state = RequestState::kNew;
        o.accepted = accepted;
        o.rejected = rejected;
        wb_.outcomes.push_back(o);
    }

    // An outcome for a retried request (its mark was written by an earlier or this batch).
    void duplicate(const std::string& producer, uint64_t seq, uint32_t events = 1)
    {
        RequestOutcome o;
        o.producer = producer;
        o.seq = seq;
        o.state = RequestState::kDuplicate;
        wb_.outcomes.push_back(o);
        wb_.record.received += events;
        wb_.record.duplicates += events;
    }

    UpsertRows& upserts()
    {
        if (wb_.upserts.empty()) {
            UpsertRows u;
            u.table = kAggTable;
            u.columns = aggColumns();
            wb_.upserts.push_back(std::move(u));
        }
        return wb_.upserts[0];
    }

    // window_start, group_key, n (kAdd), lo (kMin), hi (kMax), label (kSet), first_seen (kKeep),
    // sketch (kHllMerge), estimate (kHllEstimate). nullopt: NULL.
    void upsert(int64_t window, const std::string& group, std::optional<int64_t> n, std::optional<double> lo,
                std::optional<double> hi, std::optional<std::string> label, const std::string& firstSeen,
                const std::string& sketch)
    {
        UpsertRows& u = upserts();
        u.cells.push_back(Cell::ofInt(window));
        u.cells.push_back(Cell::ofText(text(group)));
        u.cells.push_back(n ? Cell::ofInt(*n) : Cell::null());
        u.cells.push_back(lo ? Cell::ofReal(*lo) : Cell::null());
        u.cells.push_back(hi ? Cell::ofReal(*hi) : Cell::null());
        u.cells.push_back(label ? Cell::ofText(text(*label)) : Cell::null());
        u.cells.push_back(Cell::ofText(text(firstSeen)));
        u.cells.push_back(Cell::ofBlob(text(sketch)));
        u.cells.push_back(Cell::ofReal(static_cast<double>(std::set<char>(sketch.begin(), sketch.end()).size())));
    }

    void finalize(int64_t from, int64_t to) { wb_.finalizes.push_back({kAggTable, from, to}); }

    WriteBatch& batch() { return wb_; }
    WriteBatch take()
    {
        wb_.record.requests = static_cast<uint32_t>(wb_.outcomes.size());
        return std::move(wb_);
    }

private:
    WriteBatch wb_;
};

inline Status commit(BatchWriter& w, WriteBatch&& batch, std::vector<std::string>* shredded = nullptr)
{
    std::vector<std::string> s;
    CommitTiming timing;
    WriteBatch b = std::move(batch);
    Status st = w.commit(b, s, timing);
    if (shredded)
        *shredded = s;
    return st;
}

inline void commitOk(BatchWriter& w, WriteBatch&& batch, std::vector<std::string>* shredded = nullptr)
{
    Status s = commit(w, std::move(batch), shredded);
    INFO(s.message());
    REQUIRE(s.isOk());
}

}  // namespace sluice::store::testing
