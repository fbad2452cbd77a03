// CommittedReader: batches after a cursor with their row ranges, the rows of each range, the
// shredding log; exporter cursors.
#include <catch2/catch.hpp>

#include "store/committed_reader.h"
#include "store/cursor_mailbox.h"
#include "store/key_table.h"
#include "fixtures.h"

namespace sluice::store::testing {
namespace {

std::vector<std::string> column(CommittedReader& r, const RowQuery& q, const CommittedBatch& b, const std::string& table,
                                const std::string& name)
{
    std::vector<std::string> values;
    const RowRange* range = b.range(table);
    if (!range)
        return values;
    Status s = r.forEachRow(q, b.id, *range, [&](const RowView& row) {
        for (size_t c = 0; c < row.names.size(); ++c) {
            if (row.names[c] != name)
                continue;
            const Cell& cell = row.cells[c];
            values.push_back(cell.kind == Cell::Kind::kInt ? std::to_string(cell.i()) : std::string(cell.text()));
        }
    });
    INFO(s.message());
    REQUIRE(s.isOk());
    return values;
}

CommittedReader openReader(const std::string& path)
{
    auto r = CommittedReader::open(path);
    INFO((r.isOk() ? "" : r.status().message()));
    REQUIRE(r.isOk());
    return std::move(*r);
}

}  // namespace

TEST_CASE("parseRowRanges reads the writer's lines and skips malformed ones", "[store][reader]")
{
    auto r = parseRowRanges("events_a 1 10\nkeys 4 4\nbad line\nx 1 y\nagg_t -60000 120000\n");
    REQUIRE(r.size() == 3);
    CHECK(r[0].table == "events_a");
    CHECK(r[0].first == 1);
    CHECK(r[0].last == 10);
    CHECK(r[1].table == "keys");
    CHECK(r[2].first == -60000);
    CHECK(parseRowRanges("").empty());
}

TEST_CASE("each batch records its row ranges; the reader returns exactly that batch's rows", "[store][reader]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    auto w = openWriterWithSchema(path);
    {
        BatchBuilder b(1);
        const size_t e = b.event("e1", "K1", "NL", 1.0);
        b.event("e2", "K1", "DE", 2.0);
        b.derived(e, "K1", "alice");
        b.key("K1", 1);
        b.upsert(0, "NL", 1, 1.0, 1.0, "x", "f", "a");
        b.upsert(60'000, "NL", 1, 1.0, 1.0, "x", "f", "a");
        commitOk(*w, b.take());
    }
    {
        BatchBuilder b(2);
        b.event("e3", "K2", "NL", 3.0);
        const size_t e = b.event("e4", "K2", "FR", 4.0);
        b.derived(e, "K2", "bob");
        b.key("K2", 2);
        b.key("DL", 9, "dead_letter");
        b.finalize(-60'000, 0);  // window 0 becomes final; nothing before it exists
        commitOk(*w, b.take());
    }
    {
        BatchBuilder b(3);  // nothing but a dead letter
        b.deadLetter(Reason::kNotJson, "not JSON");
        b.finalize(-60'000, 0);  // asked again (as after a restart): nothing new becomes final
        commitOk(*w, b.take());
    }
    Db rw = openDb(path);
    REQUIRE(rw.exec("CREATE VIEW t AS SELECT window_start AS window_start_ms, group_key, n, final FROM agg_t").isOk());

    CommittedReader r = openReader(path);
    REQUIRE(r.begin().isOk());
    CHECK(*r.lastBatchId() == 3);
    auto batches = r.batchesAfter(0, 10);
    REQUIRE(batches.isOk());
    REQUIRE(batches->size() == 3);
    const CommittedBatch& b1 = (*batches)[0];
    const CommittedBatch& b2 = (*batches)[1];
    const CommittedBatch& b3 = (*batches)[2];
    CHECK(b1.id == 1);
    CHECK(b1.committedAtMs > 0);
    REQUIRE(b1.range(kEventsTable));
    CHECK(b1.range(kEventsTable)->first == 1);
    CHECK(b1.range(kEventsTable)->last == 2);
    CHECK(b2.range(kEventsTable)->first == 3);
    CHECK(b2.range(kEventsTable)->last == 4);
    CHECK(b1.range(kAggTable) == nullptr);
    REQUIRE(b2.range(kAggTable));
    CHECK(b2.range(kAggTable)->first == 0);
    CHECK(b2.range(kAggTable)->last == 0);
    CHECK(b3.ranges.empty());

    const RowQuery events = RowQuery::tableRows(kEventsTable);
    const RowQuery derived = RowQuery::tableRows(kDerivedTable);
    CHECK(column(r, events, b1, kEventsTable, "event_id") == std::vector<std::string>{"e1", "e2"});
    CHECK(column(r, events, b2, kEventsTable, "event_id") == std::vector<std::string>{"e3", "e4"});
    CHECK(column(r, derived, b2, kDerivedTable, "sid") == std::vector<std::string>{"bob"});
    CHECK(column(r, RowQuery::finalWindows("t"), b2, kAggTable, "window_start_ms") == std::vector<std::string>{"0"});
    // Data keys only (the dead-letter key of batch 2 is not one).
    CHECK(column(r, RowQuery::dataKeys(), b1, "keys", "key_link") == std::vector<std::string>{"K1"});
    CHECK(column(r, RowQuery::dataKeys(), b2, "keys", "key_link") == std::vector<std::string>{"K2"});

    auto after = r.batchesAfter(2, 10);
    REQUIRE(after.isOk());
    REQUIRE(after->size() == 1);
    CHECK(after->front().id == 3);
    CHECK(r.batchesAfter(1, 1)->size() == 1);
    r.end();
}

TEST_CASE("a range whose last rows were deleted and reused by a later batch yields only its own rows",
          "[store][reader]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    auto w = openWriterWithSchema(path);
    {
        BatchBuilder b(1);
        const size_t e1 = b.event("e1", "K1", "NL", 1.0);
        const size_t e2 = b.event("e2", "K2", "NL", 2.0);
        b.derived(e1, "K1", "alice");
        b.derived(e2, "K2", "bob");
        commitOk(*w, b.take());
    }
    {
        // Forget K2: the derived table's last row goes, and its rowid is free again.
        Db other = openDb(path);
        auto txn = Txn::begin(other);
        REQUIRE(txn.isOk());
        REQUIRE(shredKeys(other, {"K2"}, "forget", 5).isOk());
        REQUIRE(txn->commit().isOk());
    }
    {
        BatchBuilder b(2);
        const size_t e = b.event("e3", "K3", "NL", 3.0);
        b.derived(e, "K3", "carol");
        commitOk(*w, b.take());
    }
    CommittedReader r = openReader(path);
    REQUIRE(r.begin().isOk());
    auto batches = r.batchesAfter(0, 10);
    REQUIRE(batches->size() == 2);
    CHECK((*batches)[1].range(kDerivedTable)->first == 2);  // reused
    const RowQuery derived = RowQuery::tableRows(kDerivedTable);
    CHECK(column(r, derived, (*batches)[0], kDerivedTable, "sid") == std::vector<std::string>{"alice"});
    CHECK(column(r, derived, (*batches)[1], kDerivedTable, "sid") == std::vector<std::string>{"carol"});

    auto shreds = r.shredsAfter(0, 10);
    REQUIRE(shreds.isOk());
    REQUIRE(shreds->size() == 1);
    CHECK(shreds->front().cause == "forget");
    CHECK(shreds->front().atMs == 5);
    CHECK(shreds->front().keyLinks == std::vector<std::string>{"K2"});
    CHECK(*r.lastShredId() == shreds->front().id);
    CHECK(r.shredsAfter(shreds->front().id, 10)->empty());
    r.end();
}

TEST_CASE("exporter cursors are saved, replaced and listed", "[store][reader]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    auto w = openWriterWithSchema(path);
    Db db = openDb(path);
    CHECK(!loadCursor(db, "files")->has_value());
    REQUIRE(saveCursor(db, "files", {12, 3, ""}, 100).isOk());
    REQUIRE(saveCursor(db, "kafka", {7, 0, "{\"t\":3}"}, 100).isOk());
    REQUIRE(saveCursor(db, "files", {15, 4, ""}, 200).isOk());
    auto c = loadCursor(db, "files");
    REQUIRE(c.isOk());
    REQUIRE(c->has_value());
    CHECK((*c)->batchId == 15);
    CHECK((*c)->shredId == 4);
    auto all = loadCursors(db);
    REQUIRE(all.isOk());
    REQUIRE(all->size() == 2);
    CHECK((*all)[1].first == "kafka");
    CHECK((*all)[1].second.state == "{\"t\":3}");
}

TEST_CASE("posted cursors ride on the writer's next batch, or a transaction of their own; closed, it refuses",
          "[store][reader]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    auto w = openWriterWithSchema(path);
    CursorMailbox mailbox;
    w->setCursorMailbox(&mailbox);
    Db db = openDb(path);

    CHECK(!mailbox.pending());
    REQUIRE(mailbox.post("files", {3, 1, ""}, 100));
    REQUIRE(mailbox.post("files", {4, 1, ""}, 110));  // replaces the one not yet written
    REQUIRE(mailbox.post("kafka", {2, 0, "t=3"}, 120));
    CHECK(mailbox.pending());
    CHECK(!loadCursor(db, "files")->has_value());  // posting alone writes nothing

    {
        BatchBuilder b(1);
        b.event("e1", "K1", "NL", 1.0);
        b.key("K1", 1);
        commitOk(*w, b.take());
    }
    CHECK(!mailbox.pending());
    auto files = loadCursor(db, "files");
    REQUIRE(files.isOk());
    REQUIRE(files->has_value());
    CHECK((*files)->batchId == 4);
    auto kafka = loadCursor(db, "kafka");
    REQUIRE(kafka->has_value());
    CHECK((*kafka)->state == "t=3");

    // Between batches (the writer idle): a transaction of their own; nothing posted, nothing done.
    REQUIRE(mailbox.post("files", {5, 2, ""}, 130));
    REQUIRE(w->commitCursors().isOk());
    CHECK((*loadCursor(db, "files"))->batchId == 5);
    CHECK((*loadCursor(db, "files"))->shredId == 2);
    REQUIRE(w->commitCursors().isOk());

    // The writer's end: what is left is written, and later posts are refused (the exporter then
    // saves on its own connection).
    REQUIRE(mailbox.post("kafka", {6, 0, "t=3"}, 140));
    REQUIRE(w->closeCursors(true).isOk());
    CHECK((*loadCursor(db, "kafka"))->batchId == 6);
    CHECK(!mailbox.post("kafka", {7, 0, "t=3"}, 150));
    CHECK(!mailbox.pending());
}

TEST_CASE("a posted position is the newest until its transaction commits; a failed one is posted again",
          "[store][reader]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    auto w = openWriterWithSchema(path);
    Db db = openDb(path);
    CursorMailbox mailbox;
    CHECK(!mailbox.newest("files"));
    REQUIRE(mailbox.post("files", {3, 1, ""}, 100));
    REQUIRE(mailbox.newest("files"));
    CHECK(mailbox.newest("files")->batchId == 3);

    // Taken into a transaction: still the newest (a replacing exporter must not read the old row).
    {
        auto txn = Txn::begin(db);
        REQUIRE(txn.isOk());
        REQUIRE(mailbox.writeTo(db).isOk());
        CHECK(!mailbox.pending());
        REQUIRE(mailbox.newest("files"));
        CHECK(mailbox.newest("files")->batchId == 3);
        // Given up (rolled back): posted again, unless a newer position came meanwhile.
        REQUIRE(mailbox.post("kafka", {9, 0, ""}, 110));
    }
    REQUIRE(mailbox.post("files", {4, 1, ""}, 120));
    mailbox.settle(false);
    CHECK(mailbox.pending());
    CHECK(mailbox.newest("files")->batchId == 4);
    CHECK(!loadCursor(db, "files")->has_value());

    {
        auto txn = Txn::begin(db);
        REQUIRE(mailbox.writeTo(db).isOk());
        REQUIRE(txn->commit().isOk());
    }
    mailbox.settle(true);
    CHECK(!mailbox.newest("files"));
    CHECK(!mailbox.pending());
    CHECK((*loadCursor(db, "files"))->batchId == 4);
    CHECK((*loadCursor(db, "kafka"))->batchId == 9);
}

TEST_CASE("a mailbox closed after a fault writes nothing more", "[store][reader]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    auto w = openWriterWithSchema(path);
    CursorMailbox mailbox;
    w->setCursorMailbox(&mailbox);
    REQUIRE(mailbox.post("files", {3, 0, ""}, 100));
    REQUIRE(w->closeCursors(false).isOk());
    Db db = openDb(path);
    CHECK(!loadCursor(db, "files")->has_value());
    CHECK(!mailbox.post("files", {4, 0, ""}, 110));
}

TEST_CASE("a reader's snapshot ends with end(): the WAL can then be truncated", "[store][reader]")
{
    TempDir dir;
    const std::string path = dir.file("s.db");
    auto w = openWriterWithSchema(path);
    {
        BatchBuilder b(1);
        b.event("e1", "K1", "NL", 1.0);
        commitOk(*w, b.take());
    }
    CommittedReader r = openReader(path);
    REQUIRE(r.begin().isOk());
    REQUIRE(r.batchesAfter(0, 10).isOk());
    {
        BatchBuilder b(2);
        b.event("e2", "K1", "NL", 1.0);
        commitOk(*w, b.take());
    }
    CHECK(r.batchesAfter(0, 10)->size() == 1);  // the snapshot
    CHECK(!checkpointTruncate(w->db(), 100).isOk());  // held back by the open snapshot
    r.end();
    CHECK(checkpointTruncate(w->db(), 2000).isOk());
    REQUIRE(r.begin().isOk());
    CHECK(r.batchesAfter(0, 10)->size() == 2);
    r.end();
}

}  // namespace sluice::store::testing
