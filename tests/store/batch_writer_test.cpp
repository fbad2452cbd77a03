// BatchWriter::commit: every part of a WriteBatch in one transaction, or nothing of it.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "store/fault_vfs.h"
#include "store/key_table.h"
#include "store/state.h"

using namespace sluice;
using namespace sluice::store;
using namespace sluice::store::testing;
using Catch::Matchers::Contains;

namespace {

std::string hexOf(std::string_view bytes)
{
    static const char* k = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : bytes) {
        out += k[c >> 4];
        out += k[c & 15];
    }
    return out;
}

std::string hexOf(const Digest& d) { return hexOf(std::string_view(reinterpret_cast<const char*>(d.data()), d.size())); }

// What a batch writes, to show that a failed batch left nothing behind.
struct Snapshot {
    std::vector<int64_t> counts;
    std::string agg;
    bool operator==(const Snapshot& o) const { return counts == o.counts && agg == o.agg; }
};

std::ostream& operator<<(std::ostream& out, const Snapshot& s)
{
    for (int64_t c : s.counts)
        out << c << ' ';
    return out << s.agg;
}

Snapshot snapshot(Db& db)
{
    Snapshot s;
    for (const char* t : {"batches", kEventsTable, kDerivedTable, "keys", "key_subjects", "rejects", "producer_marks",
                          kAggTable})
        s.counts.push_back(count(db, t));
    s.agg = queryText(db, "SELECT group_concat(window_start || ':' || group_key || ':' || ifnull(n, 'null') || ':' || "
                          "final || ':' || hex(sketch), ',') FROM (SELECT * FROM agg_t ORDER BY 1, 2)")
                .value_or("");
    return s;
}

// A batch that writes to every table; `markSeq` lets a test make its mark collide.
WriteBatch fullBatch(uint64_t id, uint64_t markSeq, bool withSchema = false, const std::string& keyLink = "")
{
    BatchBuilder b(id, withSchema);
    const std::string link = keyLink.empty() ? numbered("K", id) : keyLink;
    const size_t e = b.event(numbered("e", id), link, "NL", 1.0, 1);
    b.derived(e, link, "clear");
    b.key(link, static_cast<uint32_t>(id));
    b.subject(link, static_cast<uint8_t>(id));
    b.deadLetter(Reason::kNotJson, "not JSON", "p", static_cast<int64_t>(markSeq), 1, "x", link);
    b.mark("p", markSeq, 1, 1);
    b.upsert(60'000, "NL", 1, 1.0, 1.0, "l", "f", "a");
    b.finalize(0, 60'000);
    return b.take();
}

}  // namespace

TEST_CASE("commit writes every part of a WriteBatch", "[store][writer]")
{
    TempDir dir;
    auto w = openWriter(dir.file("s.db"));
    CHECK(*w->lastBatchId() == 0);

    // Batch 1 carries the schema change (tables and registry) and two events, so that the
    // events of batch 2 do not get rowids from 1.
    BatchBuilder b1(1, true);
    b1.event("e0", "K1", "NL", 1.0);
    b1.event("e1", "K1", "NL", 2.0);
    commitOk(*w, b1.take());
    Db db = openDb(dir.file("s.db"), true);
    CHECK(count(db, kEventsTable) == 2);
    CHECK(count(db, "contracts") == 1);
    CHECK(count(db, "outputs") == 1);
    CHECK(count(db, "sluice_tables") == 3);

    BatchBuilder b(2);
    const size_t a = b.event("ev-a", "K1", "NL", 10.5, 3);
    b.event("", "K2", "DE", -1.0);
    const size_t d = b.event("ev-d", "K2", "FR", 0.0, -7);
    b.derived(d, "K2", "subject-d");  // out of order, and not every event has one
    b.derived(a, "K1", "subject-a");
    b.key("K2", 0xDEADBEEF, "data", 5000, 6000);
    b.key("DL1", 7, "dead_letter", 5000, 86'405'000, "", 9);
    b.subject("K2", 3);
    b.deadLetter(Reason::kWrongType, "field 'total' must be number, got string", "prod", 12, 4, "ciphertext", "DL1");
    b.deadLetter(Reason::kNotJson, "not JSON");
    b.mark("prod", 12, 3, 1);
    b.mark("other", 0, 0, 1);
    b.duplicate("prod", 12, 4);  // answered from the mark this very batch writes
    b.upsert(60'000, "NL", 2, 1.5, 4.0, "x", "first", "ab");
    b.finalize(0, 0);
    WriteBatch wb = b.take();
    wb.record.closeReason = CloseReason::kBytes;
    wb.record.bytes = 4321;
    wb.lateEvents = 2;
    wb.times.parseUs = 1;
    wb.times.transformUs = 2;
    wb.times.aggregateUs = 3;
    std::vector<std::string> shredded;
    CommitTiming timing;
    Status s = w->commit(wb, shredded, timing);
    INFO(s.message());
    REQUIRE(s.isOk());
    CHECK(shredded.empty());
    CHECK(*w->lastBatchId() == 2);

    SECTION("the batch record")
    {
        CHECK(queryText(db, "SELECT close_reason FROM batches WHERE id = 2") == "bytes");
        CHECK(queryInt(db, "SELECT received FROM batches WHERE id = 2") == 9);
        CHECK(queryInt(db, "SELECT committed FROM batches WHERE id = 2") == 3);
        CHECK(queryInt(db, "SELECT rejected FROM batches WHERE id = 2") == 2);
        CHECK(queryInt(db, "SELECT duplicates FROM batches WHERE id = 2") == 4);
        CHECK(queryInt(db, "SELECT requests FROM batches WHERE id = 2") == 3);
        CHECK(queryInt(db, "SELECT keys_created FROM batches WHERE id = 2") == 2);
        CHECK(queryInt(db, "SELECT bytes FROM batches WHERE id = 2") == 4321);
        CHECK(queryInt(db, "SELECT late FROM batches WHERE id = 2") == 2);
        CHECK(queryInt(db, "SELECT parse_us FROM batches WHERE id = 2") == 1);
        CHECK(queryInt(db, "SELECT transform_us FROM batches WHERE id = 2") == 2);
        CHECK(queryInt(db, "SELECT aggregate_us FROM batches WHERE id = 2") == 3);
        CHECK(queryInt(db, "SELECT opened_at FROM batches WHERE id = 2") == 1'700'000'002'000);
        CHECK(queryInt(db, "SELECT closed_at FROM batches WHERE id = 2") == 1'700'000'002'200);
        CHECK(queryInt(db, "SELECT committed_at >= closed_at FROM batches WHERE id = 2") == 1);
        // The conservation law holds for every batch, in SQL.
        CHECK(queryInt(db, "SELECT count(*) FROM batches WHERE received <> committed + duplicates + rejected") == 0);
        CHECK(queryInt(db, "SELECT count(*) FROM batch_log") == 2);
    }
    SECTION("events, in their typed columns")
    {
        auto rows = db.prepare("SELECT seq, batch_id, event_id, key_link, country, total, items, consent FROM " +
                               std::string(kEventsTable) + " WHERE batch_id = 2 ORDER BY seq");
        REQUIRE(rows.isOk());
        REQUIRE(*rows->step());
        CHECK(rows->columnInt(0) == 3);
        CHECK(rows->columnInt(1) == 2);
        CHECK(rows->columnText(2) == "ev-a");
        CHECK(rows->columnText(3) == "K1");
        CHECK(rows->columnText(4) == "NL");
        CHECK(rows->columnDouble(5) == 10.5);
        CHECK(rows->columnInt(6) == 3);
        CHECK(rows->columnText(7) == "[0,1]");
        REQUIRE(*rows->step());
        CHECK(rows->columnInt(0) == 4);
        CHECK(rows->columnIsNull(2));  // no event id
        CHECK(rows->columnIsNull(6));  // no items
        CHECK(rows->columnDouble(5) == -1.0);
        REQUIRE(*rows->step());
        CHECK(rows->columnInt(0) == 5);
        CHECK(rows->columnInt(6) == -7);
        CHECK_FALSE(*rows->step());
    }
    SECTION("derived rows point at their events' rowids")
    {
        auto rows = db.prepare("SELECT d.event_seq, e.event_id, d.sid, e.country, d.key_link FROM derived_out d "
                               "JOIN events_t_shop_1_0_0 e ON e.seq = d.event_seq ORDER BY d.seq");
        REQUIRE(rows.isOk());
        REQUIRE(*rows->step());
        CHECK(rows->columnInt(0) == 5);
        CHECK(rows->columnText(1) == "ev-d");
        CHECK(rows->columnText(2) == "subject-d");
        CHECK(rows->columnText(3) == "FR");
        CHECK(rows->columnText(4) == "K2");
        REQUIRE(*rows->step());
        CHECK(rows->columnInt(0) == 3);
        CHECK(rows->columnText(1) == "ev-a");
        CHECK(rows->columnText(2) == "subject-a");
        CHECK_FALSE(*rows->step());
        CHECK(queryText(db, "SELECT sid FROM out WHERE event_id = 'ev-a'") == "subject-a");  // the view
    }
    SECTION("keys and subject links")
    {
        CHECK(queryInt(db, "SELECT key_id FROM keys WHERE key_link = 'K2'") == 0xDEADBEEF);
        CHECK(queryText(db, "SELECT kind FROM keys WHERE key_link = 'K2'") == "data");
        CHECK(queryText(db, "SELECT contract FROM keys WHERE key_link = 'K2'") == kRef);
        CHECK(queryText(db, "SELECT hex(lookup) FROM keys WHERE key_link = 'K2'") == hexOf(digest(1)));
        CHECK(queryText(db, "SELECT hex(wrapped) FROM keys WHERE key_link = 'K2'") ==
              hexOf(std::string("wrapped\0K2", 10)));
        CHECK(queryInt(db, "SELECT created_at FROM keys WHERE key_link = 'K2'") == 5000);
        CHECK(queryInt(db, "SELECT expires_at FROM keys WHERE key_link = 'K2'") == 6000);
        CHECK(queryText(db, "SELECT kind FROM keys WHERE key_link = 'DL1'") == "dead_letter");
        CHECK(queryText(db, "SELECT contract FROM keys WHERE key_link = 'DL1'") == "");
        CHECK(queryText(db, "SELECT hex(lookup) FROM keys WHERE key_link = 'DL1'") == hexOf(digest(9)));
        CHECK(count(db, "key_subjects") == 1);
        CHECK(queryText(db, "SELECT hex(subject) FROM key_subjects WHERE key_link = 'K2'") == hexOf(digest(3)));
    }
    SECTION("dead letters, with NULL for what is unknown")
    {
        CHECK(count(db, "rejects") == 2);
        auto q = [](const std::string& col, const char* reason) {
            return "SELECT " + col + " FROM rejects WHERE reason = '" + reason + "'";
        };
        CHECK(queryInt(db, q("batch_id", "wrong_type")) == 2);
        CHECK(queryInt(db, q("received_at", "wrong_type")) == 1'700'000'000'002);
        CHECK(queryText(db, q("producer", "wrong_type")) == "prod");
        CHECK(queryInt(db, q("seq", "wrong_type")) == 12);
        CHECK(queryInt(db, q("event_index", "wrong_type")) == 4);
        CHECK(queryText(db, q("message", "wrong_type")) == "field 'total' must be number, got string");
        CHECK(queryText(db, q("contract", "wrong_type")) == kRef);
        CHECK(isNull(db, q("event_id", "wrong_type")));
        CHECK(queryInt(db, q("input_bytes", "wrong_type")) == 20);
        CHECK(queryText(db, q("typeof(input)", "wrong_type")) == "blob");
        CHECK(queryText(db, q("input", "wrong_type")) == "ciphertext");
        CHECK(queryText(db, q("input_key_link", "wrong_type")) == "DL1");
        for (const char* col : {"producer", "seq", "event_index", "contract", "event_id", "input", "input_key_link"}) {
            INFO(col);
            CHECK(isNull(db, q(col, "not_json")));
        }
        CHECK(queryInt(db, q("input_bytes", "not_json")) == 10);
        CHECK(queryText(db, "SELECT reason FROM dead_letters WHERE seq = 12") == "wrong_type");  // the view
    }
    SECTION("producer marks, and duplicates answered from them")
    {
        CHECK(count(db, "producer_marks") == 2);
        CHECK(queryInt(db, "SELECT batch_id FROM producer_marks WHERE producer = 'prod' AND seq = 12") == 2);
        CHECK(queryInt(db, "SELECT accepted FROM producer_marks WHERE producer = 'prod' AND seq = 12") == 3);
        CHECK(queryInt(db, "SELECT rejected FROM producer_marks WHERE producer = 'prod' AND seq = 12") == 1);
        CHECK(queryInt(db, "SELECT rejected FROM producer_marks WHERE producer = 'other' AND seq = 0") == 1);
        REQUIRE(wb.outcomes.size() == 3);
        CHECK(wb.outcomes[2].state == RequestState::kDuplicate);
        CHECK(wb.outcomes[2].accepted == 3);
        CHECK(wb.outcomes[2].rejected == 1);
        CHECK(wb.outcomes[0].accepted == 3);  // the original's outcome is untouched
    }
    SECTION("upserts and finalizes")
    {
        CHECK(count(db, kAggTable) == 1);
        CHECK(queryInt(db, "SELECT n FROM agg_t") == 2);
        CHECK(queryText(db, "SELECT first_seen FROM agg_t") == "first");
        CHECK(queryInt(db, "SELECT final FROM agg_t") == 0);  // [0, 0] holds no window
        CHECK(queryInt(db, "SELECT estimate FROM agg_t") == 2);
    }
}

TEST_CASE("upserts merge with every MergeOp; NULL counts as absent for add, min and max", "[store][writer]")
{
    TempDir dir;
    auto w = openWriterWithSchema(dir.file("s.db"));
    Db db = openDb(dir.file("s.db"), true);
    auto row = [&](const char* group, int64_t window = 60'000) {
        return std::string(" FROM agg_t WHERE window_start = ") + std::to_string(window) + " AND group_key = '" + group + "'";
    };
    {
        BatchBuilder b(1);
        b.upsert(60'000, "NL", 2, 1.5, 4.0, "x", "first", "ab");
        b.upsert(60'000, "DE", std::nullopt, std::nullopt, std::nullopt, std::nullopt, "de-1", "z");
        b.upsert(120'000, "NL", 1, 5.0, 5.0, "w", "later", "q");
        commitOk(*w, b.take());
    }
    CHECK(count(db, kAggTable) == 3);
    CHECK(isNull(db, "SELECT n" + row("DE")));
    {
        BatchBuilder b(2);
        b.upsert(60'000, "NL", 5, 0.5, 3.0, "y", "second", "bc");           // min lower, max not higher
        b.upsert(60'000, "DE", 4, 2.0, 9.0, "lbl", "de-2", "zy");           // into NULLs
        b.upsert(120'000, "NL", 10, 7.0, 8.0, "v", "ignored", "r");         // twice in one batch:
        b.upsert(120'000, "NL", 100, 6.0, 9.5, "u", "ignored", "s");        // each merges in turn
        commitOk(*w, b.take());
    }
    CHECK(queryInt(db, "SELECT n" + row("NL")) == 7);
    CHECK(queryText(db, "SELECT lo" + row("NL")) == "0.5");
    CHECK(queryText(db, "SELECT hi" + row("NL")) == "4.0");
    CHECK(queryText(db, "SELECT label" + row("NL")) == "y");
    CHECK(queryText(db, "SELECT first_seen" + row("NL")) == "first");
    CHECK(queryText(db, "SELECT sketch" + row("NL")) == "abc");
    CHECK(queryText(db, "SELECT estimate" + row("NL")) == "3.0");
    CHECK(queryInt(db, "SELECT n" + row("DE")) == 4);
    CHECK(queryText(db, "SELECT lo" + row("DE")) == "2.0");
    CHECK(queryText(db, "SELECT hi" + row("DE")) == "9.0");
    CHECK(queryText(db, "SELECT label" + row("DE")) == "lbl");
    CHECK(queryText(db, "SELECT first_seen" + row("DE")) == "de-1");
    CHECK(queryText(db, "SELECT sketch" + row("DE")) == "yz");
    CHECK(queryText(db, "SELECT estimate" + row("DE")) == "2.0");
    CHECK(queryInt(db, "SELECT n" + row("NL", 120'000)) == 111);
    CHECK(queryText(db, "SELECT lo" + row("NL", 120'000)) == "5.0");
    CHECK(queryText(db, "SELECT hi" + row("NL", 120'000)) == "9.5");
    CHECK(queryText(db, "SELECT label" + row("NL", 120'000)) == "u");
    CHECK(queryText(db, "SELECT sketch" + row("NL", 120'000)) == "qrs");
    CHECK(queryText(db, "SELECT estimate" + row("NL", 120'000)) == "3.0");
    {
        // New NULLs leave add/min/max alone; kSet writes the NULL; a known sketch value adds nothing.
        BatchBuilder b(3);
        b.upsert(60'000, "NL", std::nullopt, std::nullopt, std::nullopt, std::nullopt, "third", "a");
        b.finalize(0, 60'000);
        commitOk(*w, b.take());
    }
    CHECK(queryInt(db, "SELECT n" + row("NL")) == 7);
    CHECK(queryText(db, "SELECT lo" + row("NL")) == "0.5");
    CHECK(queryText(db, "SELECT hi" + row("NL")) == "4.0");
    CHECK(isNull(db, "SELECT label" + row("NL")));
    CHECK(queryText(db, "SELECT first_seen" + row("NL")) == "first");
    CHECK(queryText(db, "SELECT sketch" + row("NL")) == "abc");
    CHECK(queryText(db, "SELECT estimate" + row("NL")) == "3.0");
    // Finalize marks exactly the windows in [from, to].
    CHECK(queryInt(db, "SELECT final" + row("NL")) == 1);
    CHECK(queryInt(db, "SELECT final" + row("DE")) == 1);
    CHECK(queryInt(db, "SELECT final" + row("NL", 120'000)) == 0);
    {
        BatchBuilder b(4);
        b.finalize(120'000, 120'000);
        b.finalize(0, 60'000);  // again: no change
        commitOk(*w, b.take());
    }
    CHECK(queryInt(db, "SELECT sum(final) FROM agg_t") == 3);
}

TEST_CASE("subject set columns merge with sluice_subjects_merge and count with sluice_subjects_count",
          "[store][writer]")
{
    TempDir dir;
    auto w = openWriterWithSchema(dir.file("s.db"));
    REQUIRE(w->db()
                .exec("CREATE TABLE agg_people(window_start INTEGER NOT NULL, group_key TEXT NOT NULL, "
                      "subjects INTEGER NOT NULL DEFAULT 0, subject_set BLOB NOT NULL, "
                      "PRIMARY KEY(window_start, group_key))")
                .isOk());
    Db db = openDb(dir.file("s.db"), true);
    auto batch = [&](uint64_t id, std::vector<std::pair<std::string, std::string>> rows) {
        BatchBuilder b(id);
        UpsertRows u;
        u.table = "agg_people";
        u.columns = {{"window_start", MergeOp::kKey, -1},
                     {"group_key", MergeOp::kKey, -1},
                     {"subjects", MergeOp::kSubjectsCount, 3},
                     {"subject_set", MergeOp::kSubjectsMerge, -1}};
        WriteBatch wb = b.take();
        Arena& arena = wb.arenas.emplace_back();
        for (const auto& [group, set] : rows) {
            u.cells.push_back(Cell::ofInt(0));
            u.cells.push_back(Cell::ofText(arena.copy(group)));
            u.cells.push_back(Cell::ofInt(static_cast<int64_t>(std::set<char>(set.begin(), set.end()).size())));
            u.cells.push_back(Cell::ofBlob(arena.copy(set)));
        }
        wb.upserts.push_back(std::move(u));
        return wb;
    };
    commitOk(*w, batch(1, {{"NL", "ab"}, {"DE", "x"}}));
    commitOk(*w, batch(2, {{"NL", "bc"}, {"NL", "d"}}));
    CHECK(queryText(db, "SELECT subject_set FROM agg_people WHERE group_key = 'NL'") == "abcd");
    CHECK(queryInt(db, "SELECT subjects FROM agg_people WHERE group_key = 'NL'") == 4);
    CHECK(queryInt(db, "SELECT subjects FROM agg_people WHERE group_key = 'DE'") == 1);
    // A corrupt set fails the batch.
    Status bad = commit(*w, batch(3, {{"DE", "!"}}));
    REQUIRE_FALSE(bad.isOk());
    CHECK_THAT(bad.message(), Contains("bad subject set"));
    CHECK(queryInt(db, "SELECT subjects FROM agg_people WHERE group_key = 'DE'") == 1);
}

TEST_CASE("deletes apply before the upserts of their batch; rows read back as cells", "[store][writer]")
{
    TempDir dir;
    auto w = openWriterWithSchema(dir.file("s.db"));
    Db db = openDb(dir.file("s.db"), true);
    {
        BatchBuilder b(1);
        b.upsert(60'000, "NL", 2, 1.5, 4.0, "x", "first", "ab");
        b.upsert(120'000, "NL", 1, 5.0, 5.0, "w", "later", "q");
        b.upsert(60'000, "DE", 1, 1.0, 1.0, std::nullopt, "de", "z");
        commitOk(*w, b.take());
    }
    {
        // Replace (60000, NL) by a fresh row, delete (120000, NL); (60000, DE) stays.
        BatchBuilder b(2);
        b.upsert(60'000, "NL", 7, 9.0, 9.0, "new", "again", "c");
        WriteBatch wb = b.take();
        DeleteRows del;
        del.table = kAggTable;
        del.keyColumns = {"window_start", "group_key"};
        for (auto [window, group] : {std::pair<int64_t, const char*>{60'000, "NL"}, {120'000, "NL"}, {180'000, "XX"}}) {
            del.cells.push_back(Cell::ofInt(window));
            del.cells.push_back(Cell::ofText(group));
        }
        wb.deletes.push_back(del);
        commitOk(*w, std::move(wb));
    }
    CHECK(count(db, kAggTable) == 2);
    CHECK(queryInt(db, "SELECT n FROM agg_t WHERE window_start = 60000 AND group_key = 'NL'") == 7);
    CHECK(queryText(db, "SELECT first_seen FROM agg_t WHERE window_start = 60000 AND group_key = 'NL'") == "again");
    CHECK(queryText(db, "SELECT sketch FROM agg_t WHERE window_start = 60000 AND group_key = 'NL'") == "c");

    auto exists = tableExists(db, kAggTable);
    REQUIRE(exists.isOk());
    CHECK(*exists);
    CHECK_FALSE(*tableExists(db, "agg_none"));
    auto stmt = db.prepare("SELECT window_start, group_key, lo, label, sketch FROM agg_t ORDER BY group_key");
    REQUIRE(stmt.isOk());
    std::vector<std::vector<Cell::Kind>> kinds;
    std::vector<std::string> texts;
    REQUIRE(stmt->forEachRow([&](const Stmt& row) {
                std::vector<Cell::Kind> k;
                for (int i = 0; i < row.columnCount(); ++i)
                    k.push_back(row.columnCell(i).kind);
                kinds.push_back(k);
                texts.emplace_back(row.columnCell(1).text());
                texts.emplace_back(row.columnCell(4).text());
            }).isOk());
    using K = Cell::Kind;
    CHECK(kinds == std::vector<std::vector<K>>{{K::kInt, K::kText, K::kReal, K::kNull, K::kBlob},
                                              {K::kInt, K::kText, K::kReal, K::kText, K::kBlob}});
    CHECK(texts == std::vector<std::string>{"DE", "z", "NL", "c"});
}

TEST_CASE("a batch written in parts applies each part's deletes, upserts and finalizes in that part",
          "[store][writer][parts]")
{
    // Session windows rewrite whole rows: a flush deletes the stored rows that no longer stand
    // for a session and upserts the new ones. When the flushes of one batch travel in different
    // parts, each part's deletes must apply before that part's upserts but after the upserts of
    // the parts before it; readers see none of it before the commit.
    TempDir dir;
    auto w = openWriterWithSchema(dir.file("s.db"));
    Db reader = openDb(dir.file("s.db"), true);
    auto rows = [](Db& db) {
        return queryText(db, "SELECT group_concat(window_start || ':' || group_key || ':' || n || ':' || final, ',') "
                             "FROM (SELECT * FROM agg_t ORDER BY 1, 2)")
            .value_or("");
    };
    auto deleting = [](WriteBatch& wb, int64_t window, const char* group) {
        if (wb.deletes.empty())
            wb.deletes.push_back(DeleteRows{kAggTable, {"window_start", "group_key"}, {}});
        wb.deletes[0].cells.push_back(Cell::ofInt(window));
        wb.deletes[0].cells.push_back(Cell::ofText(group));
    };
    {
        BatchBuilder b(1);
        b.upsert(1000, "A", 1, 1.0, 1.0, "s", "first", "a");
        commitOk(*w, b.take());
    }
    REQUIRE(rows(reader) == "1000:A:1:0");

    // Part 1: an event before the session moves its start (delete 1000, insert 500).
    BatchBuilder p1(2);
    p1.event("e1", "K1", "NL", 1.0, 1);
    p1.upsert(500, "A", 2, 1.0, 1.0, "s", "first", "a");
    WriteBatch first = p1.take();
    deleting(first, 1000, "A");
    first.closesBatch = false;
    // Part 2: another event rewrites the same session under the same key (delete 500, insert 500).
    BatchBuilder p2(2);
    p2.upsert(500, "A", 3, 1.0, 2.0, "s", "first", "ab");
    WriteBatch middle = p2.take();
    deleting(middle, 500, "A");
    middle.opensBatch = false;
    middle.closesBatch = false;
    // Last part: a new session, and the first one becomes final.
    BatchBuilder p3(2);
    p3.upsert(9000, "B", 1, 4.0, 4.0, "t", "first", "b");
    p3.finalize(0, 1000);
    WriteBatch last = p3.take();
    last.opensBatch = false;

    std::vector<std::string> shredded;
    CommitTiming timing;
    SECTION("committed: the state after the last part")
    {
        REQUIRE(w->beginBatch(first, shredded).isOk());
        REQUIRE(w->writePart(first).isOk());
        CHECK(rows(reader) == "1000:A:1:0");
        REQUIRE(w->writePart(middle).isOk());
        CHECK(rows(reader) == "1000:A:1:0");
        REQUIRE(w->commitBatch(last, timing).isOk());
        CHECK(rows(reader) == "500:A:3:1,9000:B:1:0");
        CHECK(queryInt(reader, "SELECT count(*) FROM " + std::string(kEventsTable) + " WHERE batch_id = 2") == 1);
    }
    SECTION("given up after the second part: nothing of the batch")
    {
        REQUIRE(w->beginBatch(first, shredded).isOk());
        REQUIRE(w->writePart(first).isOk());
        REQUIRE(w->writePart(middle).isOk());
        w->abortBatch();
        CHECK(rows(reader) == "1000:A:1:0");
        BatchBuilder again(2);
        again.upsert(1000, "A", 1, 1.0, 1.0, "s", "first", "a");
        commitOk(*w, again.take());
        CHECK(rows(reader) == "1000:A:2:0");
    }
}

TEST_CASE("a sketch function error fails the upsert and the batch", "[store][writer]")
{
    TempDir dir;
    auto w = openWriterWithSchema(dir.file("s.db"));
    {
        BatchBuilder b(1);
        b.upsert(60'000, "NL", 1, 1.0, 1.0, "x", "f", "ab");
        commitOk(*w, b.take());
    }
    BatchBuilder b(2);
    b.event("e", "K", "NL", 1.0);
    b.upsert(60'000, "NL", 1, 1.0, 1.0, "x", "f", "!");  // the stand-in refuses '!'
    Status s = commit(*w, b.take());
    REQUIRE_FALSE(s.isOk());
    CHECK_THAT(s.message(), Contains("merging into agg_t"));
    CHECK_THAT(s.message(), Contains("bad sketch"));
    Db db = openDb(dir.file("s.db"), true);
    CHECK(count(db, kEventsTable) == 0);
    CHECK(queryText(db, "SELECT sketch FROM agg_t") == "ab");
}

TEST_CASE("a failed statement rolls the whole batch back; a fresh writer commits the next", "[store][writer]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    {
        auto w = openWriter(path);
        commitOk(*w, fullBatch(1, 1, true));
        Db db = openDb(path, true);
        const Snapshot before = snapshot(db);
        CHECK(before.counts == std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1});

        SECTION("a duplicate producer mark (a constraint error in the middle of the batch)")
        {
            WriteBatch bad = fullBatch(2, 1);  // producer p, seq 1 again
            Status s = commit(*w, std::move(bad));
            REQUIRE_FALSE(s.isOk());
            CHECK(s.code() == StatusCode::kInvalidArgument);
            CHECK_THAT(s.message(), Contains("recording producer p seq 1"));
            CHECK_THAT(s.message(), Contains("UNIQUE constraint failed: producer_marks.producer, producer_marks.seq"));
        }
        SECTION("a duplicate batch id (the very last statement)")
        {
            WriteBatch bad = fullBatch(1, 2, false, "K-other");  // only the batch id collides
            Status s = commit(*w, std::move(bad));
            REQUIRE_FALSE(s.isOk());
            CHECK_THAT(s.message(), Contains("recording batch 1"));
            CHECK_THAT(s.message(), Contains("UNIQUE constraint failed: batches.id"));
        }
        SECTION("an insert into a table the writer does not know")
        {
            WriteBatch bad = fullBatch(2, 2);
            TableRows extra;
            extra.table = "events_nobody";
            extra.width = 1;
            extra.cells.push_back(Cell::ofInt(1));
            bad.inserts.push_back(extra);
            Status s = commit(*w, std::move(bad));
            REQUIRE_FALSE(s.isOk());
            CHECK_THAT(s.message(), Contains("no schema for table events_nobody"));
        }
        // Nothing of the failed batch is visible, to this reader or on the writer's connection,
        // and no transaction was left open.
        CHECK(snapshot(db) == before);
        CHECK(snapshot(w->db()) == before);
        CHECK(sqlite3_get_autocommit(w->db().handle()) == 1);
        CHECK(*w->lastBatchId() == 1);
    }
    // As the daemon does after a failed commit: a new process, a new writer.
    auto fresh = openWriterWithSchema(path);
    commitOk(*fresh, fullBatch(2, 2));
    Db db = openDb(path, true);
    CHECK(snapshot(db).counts == std::vector<int64_t>{2, 2, 2, 2, 2, 2, 2, 1});
    CHECK(queryInt(db, "SELECT n FROM agg_t") == 2);
    CHECK(quickCheck(db).isOk());
}

TEST_CASE("the writer that saw a failed statement can commit the next batch", "[store][writer]")
{
    // Not what the daemon does (it exits), but a rollback must leave the connection usable.
    TempDir dir;
    auto w = openWriter(dir.file("s.db"));
    commitOk(*w, fullBatch(1, 1, true));
    CHECK_FALSE(commit(*w, fullBatch(2, 1)).isOk());
    commitOk(*w, fullBatch(2, 2));
    commitOk(*w, fullBatch(3, 3));
    Db db = openDb(dir.file("s.db"), true);
    CHECK(count(db, "batches") == 3);
    CHECK(count(db, kEventsTable) == 3);
    CHECK(count(db, "producer_marks") == 3);
}

TEST_CASE("shredKeys deletes keys, subject links, derived rows and dead letters, and logs it", "[store][shred]")
{
    TempDir dir;
    auto w = openWriterWithSchema(dir.file("s.db"));
    {
        BatchBuilder b(1);
        const size_t e1 = b.event("e1", "K1", "NL", 1.0);
        const size_t e2 = b.event("e2", "K2", "NL", 2.0);
        const size_t e3 = b.event("e3", "K1", "DE", 3.0);
        b.derived(e1, "K1", "alice");
        b.derived(e2, "K2", "bob");
        b.derived(e3, "K1", "alice");
        b.key("K1", 1);
        b.key("K2", 2);
        b.subject("K1", 1);
        b.subject("K2", 2);
        b.deadLetter(Reason::kWrongType, "m", "p", 1, 0, "copy", "K1");
        b.deadLetter(Reason::kWrongType, "m", "p", 1, 1, "copy", "K2");
        commitOk(*w, b.take());
    }
    Db other = openDb(dir.file("s.db"));
    {
        auto txn = Txn::begin(other);
        REQUIRE(txn.isOk());
        auto report = shredKeys(other, {"K1"}, "forget subject", 1'234);
        INFO((report.isOk() ? "" : report.status().message()));
        REQUIRE(report.isOk());
        CHECK(report->keys == 1);
        CHECK(report->derivedRows == 2);
        CHECK(report->deadLetters == 1);
        CHECK(report->keyLinks == std::vector<std::string>{"K1"});
        REQUIRE(txn->commit().isOk());
    }
    CHECK(count(other, "keys", "key_link = 'K1'") == 0);
    CHECK(count(other, "keys", "key_link = 'K2'") == 1);
    CHECK(count(other, "key_subjects", "key_link = 'K1'") == 0);
    CHECK(count(other, "key_subjects", "key_link = 'K2'") == 1);
    CHECK(count(other, kDerivedTable, "key_link = 'K1'") == 0);
    CHECK(count(other, kDerivedTable, "key_link = 'K2'") == 1);
    CHECK(count(other, "rejects", "input_key_link = 'K1'") == 0);
    CHECK(count(other, "rejects") == 1);
    CHECK(count(other, kEventsTable) == 3);  // encrypted events stay, unreadable
    CHECK(queryText(other, "SELECT cause FROM shred_log") == "forget subject");
    CHECK(queryInt(other, "SELECT at FROM shred_log") == 1'234);
    CHECK(queryInt(other, "SELECT keys FROM shred_log") == 1);
    CHECK(queryInt(other, "SELECT derived_rows FROM shred_log") == 2);
    CHECK(queryText(other, "SELECT key_links FROM shred_log") == "K1\n");

    // Nothing to shred: nothing done, nothing logged.
    auto none = shredKeys(other, {}, "x", 1);
    REQUIRE(none.isOk());
    CHECK(none->keys == 0);
    CHECK(count(other, "shred_log") == 1);

    // WAL truncation afterwards leaves no copy in the WAL file.
    REQUIRE(checkpointTruncate(other, 5000).isOk());
    CHECK(std::filesystem::file_size(dir.file("s.db-wal")) == 0);
}

TEST_CASE("the writer drops derived rows whose key another connection shredded", "[store][shred]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    auto w = openWriterWithSchema(path);
    {
        BatchBuilder b(1);
        b.derived(b.event("e1", "K1", "NL", 1.0), "K1", "alice");
        b.derived(b.event("e2", "K2", "NL", 1.0), "K2", "bob");
        b.key("K1", 1);
        b.key("K2", 2);
        std::vector<std::string> shredded;
        commitOk(*w, b.take(), &shredded);
        CHECK(shredded.empty());
    }
    // sluicectl forget, in another process.
    {
        Db other = openDb(path);
        auto txn = Txn::begin(other);
        REQUIRE(txn.isOk());
        REQUIRE(shredKeys(other, {"K1"}, "forget", 1).isOk());
        REQUIRE(txn->commit().isOk());
    }
    // A batch transformed before the writer learned of it still holds alice in clear.
    BatchBuilder b(2);
    b.derived(b.event("e3", "K1", "NL", 1.0), "K1", "alice");
    b.derived(b.event("e4", "K2", "NL", 1.0), "K2", "bob");
    std::vector<std::string> shredded;
    commitOk(*w, b.take(), &shredded);
    CHECK(shredded == std::vector<std::string>{"K1"});  // the pipeline must forget K1
    Db db = openDb(path, true);
    CHECK(count(db, kEventsTable, "batch_id = 2") == 2);           // the events are kept (encrypted)
    CHECK(count(db, kDerivedTable, "key_link = 'K1'") == 0);       // the plaintext is not
    CHECK(count(db, kDerivedTable, "key_link = 'K2'") == 2);
    CHECK(count(db, kDerivedTable, "sid = 'alice'") == 0);

    // The derived rows of batch 2 still point at the right events.
    CHECK(queryText(db, "SELECT e.event_id FROM derived_out d JOIN events_t_shop_1_0_0 e ON e.seq = d.event_seq "
                        "WHERE d.batch_id = 2") == "e4");

    // Without another shred, the next batch reports nothing new.
    BatchBuilder c(3);
    c.derived(c.event("e5", "K2", "NL", 1.0), "K2", "bob");
    commitOk(*w, c.take(), &shredded);
    CHECK(shredded.empty());
    CHECK(count(db, kDerivedTable) == 3);
}

TEST_CASE("derived rows under a shredded key are dropped in every batch still in flight", "[store][shred]")
{
    // The pipeline hears of a shred only after the commit that reported it; batches already
    // transformed by then (the commit queue, the batch being transformed) still carry derived
    // rows decrypted with that key. They must not be written either.
    TempDir dir;
    const std::string path = dir.file("s.db");
    auto w = openWriterWithSchema(path);
    {
        BatchBuilder b(1);
        b.derived(b.event("e1", "K1", "NL", 1.0), "K1", "alice");
        b.key("K1", 1);
        commitOk(*w, b.take());
    }
    {
        Db other = openDb(path);
        auto txn = Txn::begin(other);
        REQUIRE(txn.isOk());
        REQUIRE(shredKeys(other, {"K1"}, "forget", 1).isOk());
        REQUIRE(txn->commit().isOk());
    }
    for (uint64_t id : {2, 3}) {  // both built before the pipeline learned of the shred
        BatchBuilder b(id);
        b.derived(b.event(numbered("e", id), "K1", "NL", 1.0), "K1", "alice");
        commitOk(*w, b.take());
    }
    Db db = openDb(path, true);
    CHECK(count(db, kEventsTable) == 3);
    INFO("derived rows in clear for a forgotten subject, by batch: "
         << queryText(db, "SELECT group_concat(batch_id) FROM derived_out WHERE sid = 'alice'").value_or("none"));
    CHECK(count(db, kDerivedTable, "sid = 'alice'") == 0);
}

TEST_CASE("a full disk (fault VFS) fails the commit; after the fault a fresh writer succeeds", "[store][fault]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    const std::string trigger = dir.file("disk-full");
    REQUIRE(registerFaultVfs(trigger).isOk());
    REQUIRE(registerFaultVfs(trigger).isOk());  // idempotent
    {
        auto w = openWriterWithSchema(path, kFaultVfsName);
        commitOk(*w, fullBatch(1, 1));

        std::ofstream(trigger) << "full";
        Status s = commit(*w, fullBatch(2, 2));
        REQUIRE_FALSE(s.isOk());
        CHECK(s.code() == StatusCode::kIoError);
        CHECK_THAT(s.message(), Contains("committing batch 2"));
        CHECK_THAT(s.message(), Contains("(sqlite 13)"));  // SQLITE_FULL
        CHECK(sqlite3_get_autocommit(w->db().handle()) == 1);

        // Readers (the default VFS) see only the first batch.
        Db reader = openDb(path, true);
        CHECK(count(reader, "batches") == 1);
        CHECK(count(reader, kEventsTable) == 1);

        // Still full: a second attempt fails the same way.
        CHECK_FALSE(commit(*w, fullBatch(2, 2)).isOk());
        std::filesystem::remove(trigger);
    }
    auto w = openWriterWithSchema(path, kFaultVfsName);
    commitOk(*w, fullBatch(2, 2));
    Db db = openDb(path, true);
    CHECK(count(db, "batches") == 2);
    CHECK(count(db, kEventsTable) == 2);
    CHECK(count(db, "producer_marks") == 2);
    CHECK(quickCheck(db).isOk());
    auto ic = db.queryText("PRAGMA integrity_check");
    REQUIRE(ic.isOk());
    CHECK(*ic == "ok");
}

TEST_CASE("KeyReader lists the active keys and reads one by rowid; findKeys filters", "[store][keys]")
{
    TempDir dir;
    auto w = openWriterWithSchema(dir.file("s.db"));
    std::vector<int64_t> rowids;
    {
        BatchBuilder b(1);
        b.key("old", 1, "data", 1000, 5000, kRef, 7);
        b.key("new", 2, "data", 2000, 6000, kRef, 7);
        b.key("other", 3, "data", 3000, 9000, kRef, 8);
        b.key("day", 4, "dead_letter", 1500, 9000, "", 7);
        b.subject("new", 40);
        b.subject("other", 40);
        b.subject("old", 41);
        WriteBatch wb = b.take();
        std::vector<std::string> shredded;
        CommitTiming timing;
        REQUIRE(w->commit(wb, shredded, timing).isOk());
        // The writer reports where each key was stored.
        for (const KeyRecord& k : wb.keys) {
            CHECK(k.rowid > 0);
            CHECK(queryInt(w->db(), "SELECT id FROM keys WHERE key_link = '" + k.keyLink + "'") == k.rowid);
            rowids.push_back(k.rowid);
        }
    }
    auto reader = KeyReader::open(dir.file("s.db"));
    REQUIRE(reader.isOk());
    struct Active {
        Digest lookup;
        int64_t rowid;
        int64_t expires;
    };
    auto active = [&](std::string_view kind, int64_t now) {
        std::vector<Active> out;
        REQUIRE(reader->forEachActive(kind, now, [&](const Digest& l, int64_t r, int64_t e) { out.push_back({l, r, e}); })
                    .isOk());
        return out;
    };
    auto a = active("data", 2500);
    REQUIRE(a.size() == 3);
    CHECK(a[0].rowid == rowids[0]);
    CHECK(a[0].lookup == digest(7));
    CHECK(a[0].expires == 5000);
    CHECK(a[1].rowid == rowids[1]);
    CHECK(a[2].rowid == rowids[2]);
    CHECK(a[2].lookup == digest(8));
    auto later = active("data", 5000);  // expires_at is exclusive
    REQUIRE(later.size() == 2);
    CHECK(later[0].rowid == rowids[1]);
    auto days = active("dead_letter", 0);
    REQUIRE(days.size() == 1);
    CHECK(days[0].rowid == rowids[3]);
    CHECK(active("data", 9000).empty());

    auto k = reader->byRowid(rowids[1]);
    REQUIRE(k.isOk());
    REQUIRE(k->has_value());
    CHECK((*k)->rowid == rowids[1]);
    CHECK((*k)->keyLink == "new");
    CHECK((*k)->keyId == 2);
    CHECK((*k)->kind == "data");
    CHECK((*k)->contract == kRef);
    CHECK((*k)->wrapped == std::string("wrapped\0new", 11));
    CHECK((*k)->createdAtMs == 2000);
    CHECK((*k)->expiresAtMs == 6000);
    CHECK((*k)->lookup == digest(7));
    CHECK_FALSE(reader->byRowid(999'999)->has_value());

    Db& db = w->db();
    auto links = [&](const KeyFilter& f) {
        auto keys = findKeys(db, f);
        REQUIRE(keys.isOk());
        std::vector<std::string> out;
        for (const StoredKey& s : *keys)
            out.push_back(s.keyLink);
        return out;
    };
    CHECK(links({}) == std::vector<std::string>{"old", "new", "other"});  // kind data, by creation
    KeyFilter byLink;
    byLink.keyLink = "other";
    CHECK(links(byLink) == std::vector<std::string>{"other"});
    KeyFilter bySubject;
    bySubject.subject = digest(40);
    CHECK(links(bySubject) == std::vector<std::string>{"new", "other"});
    KeyFilter byTime;
    byTime.createdFromMs = 1500;
    byTime.createdToMs = 3000;
    CHECK(links(byTime) == std::vector<std::string>{"new"});
    KeyFilter dl;
    dl.kind = "dead_letter";
    CHECK(links(dl) == std::vector<std::string>{"day"});
}

TEST_CASE("checkpointTruncate gives up while a reader holds an old snapshot", "[store][keys]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    BatchWriter::Options o;
    o.path = path;
    o.sketches = sketches();
    auto opened = BatchWriter::open(o);
    REQUIRE(opened.isOk());
    auto& w = *opened;
    REQUIRE(w->applySchema(*pipeline(), tables(), 1).isOk());
    sqlite3_busy_timeout(w->db().handle(), 10);  // the test's own bound on SQLite's busy wait
    commitOk(*w, fullBatch(1, 1));

    Db reader = openDb(path, true);
    REQUIRE(reader.exec("BEGIN").isOk());
    CHECK(count(reader, "batches") == 1);  // the read transaction now holds this snapshot
    commitOk(*w, fullBatch(2, 2));
    Status s = checkpointTruncate(w->db(), 50);
    REQUIRE_FALSE(s.isOk());
    CHECK(s.code() == StatusCode::kUnavailable);
    CHECK_THAT(s.message(), Contains("could not be checkpointed and truncated within 50 ms"));
    REQUIRE(reader.exec("COMMIT").isOk());
    REQUIRE(checkpointTruncate(w->db(), 5000).isOk());
    CHECK(std::filesystem::file_size(path + "-wal") == 0);
}

TEST_CASE("checkpointTruncate waits by its own timeout, not by the connection's busy handler", "[store][keys]")
{
    // The writer's connection has a 30 s busy timeout. A checkpoint that waits in that handler
    // for a long-running reader stalls the writer thread for 30 s, whatever timeoutMs says.
    // Stand-in: a busy handler that counts its calls (and gives up after many, to end the test).
    TempDir dir;
    const std::string path = dir.file("s.db");
    auto w = openWriterWithSchema(path);
    commitOk(*w, fullBatch(1, 1));
    Db reader = openDb(path, true);
    REQUIRE(reader.exec("BEGIN").isOk());
    CHECK(count(reader, "batches") == 1);
    commitOk(*w, fullBatch(2, 2));

    int calls = 0;
    sqlite3_busy_handler(
        w->db().handle(),
        [](void* n, int) -> int {
            ++*static_cast<int*>(n);
            return *static_cast<int*>(n) < 1000;
        },
        &calls);
    Status s = checkpointTruncate(w->db(), 50);
    CHECK(s.code() == StatusCode::kUnavailable);
    CHECK(calls == 0);
    REQUIRE(reader.exec("COMMIT").isOk());
}
