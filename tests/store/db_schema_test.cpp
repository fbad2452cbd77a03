// Db, Stmt, Txn; the schema version and its migrations; per-contract tables; the registry.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "store/key_table.h"
#include "store/state.h"

using namespace sluice;
using namespace sluice::store;
using namespace sluice::store::testing;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

TEST_CASE("Db::open turns on WAL, synchronous=FULL, secure_delete and a busy timeout", "[store][db]")
{
    TempDir dir;
    Db::Options o;
    o.busyTimeoutMs = 1234;
    o.cacheBytes = 4 * 1024 * 1024;
    auto db = Db::open(dir.file("a.db"), o);
    REQUIRE(db.isOk());
    CHECK(queryText(*db, "PRAGMA journal_mode") == "wal");
    CHECK(queryInt(*db, "PRAGMA synchronous") == 2);  // FULL
    CHECK(queryInt(*db, "PRAGMA secure_delete") == 1);
    CHECK(queryInt(*db, "PRAGMA foreign_keys") == 0);
    CHECK(queryInt(*db, "PRAGMA busy_timeout") == 1234);
    CHECK(queryInt(*db, "PRAGMA cache_size") == -4096);
    CHECK(std::filesystem::exists(dir.file("a.db")));

    // A second connection sees WAL (a property of the file) and sets its own FULL.
    Db other = openDb(dir.file("a.db"));
    CHECK(queryInt(other, "PRAGMA synchronous") == 2);
    // A read-only connection opens but cannot write.
    Db reader = openDb(dir.file("a.db"), true);
    CHECK(queryText(reader, "PRAGMA journal_mode") == "wal");
    Status w = reader.exec("CREATE TABLE x(a)");
    CHECK_FALSE(w.isOk());
    CHECK(w.code() == StatusCode::kPermission);
}

TEST_CASE("Db::open reports what it could not open", "[store][db]")
{
    TempDir dir;
    auto missing = Db::open(dir.file("no/such/dir/a.db"), {});
    REQUIRE_FALSE(missing.isOk());
    CHECK(missing.status().code() == StatusCode::kIoError);
    CHECK_THAT(missing.status().message(), StartsWith("cannot open database " + dir.file("no/such/dir/a.db")));

    Db::Options noCreate;
    noCreate.create = false;
    auto absent = Db::open(dir.file("absent.db"), noCreate);
    CHECK_FALSE(absent.isOk());

    std::ofstream(dir.file("garbage.db")) << std::string(4096, 'G');
    auto garbage = Db::open(dir.file("garbage.db"), {});
    REQUIRE_FALSE(garbage.isOk());
    CHECK(garbage.status().code() == StatusCode::kCorruption);
    CHECK_THAT(garbage.status().message(), Contains("garbage.db"));
}

TEST_CASE("Stmt binds, steps and reports errors with the statement", "[store][db]")
{
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(db.exec("CREATE TABLE t(i INTEGER, d REAL, s TEXT, b BLOB, n)").isOk());
    auto ins = db.prepare("INSERT INTO t VALUES(?, ?, ?, ?, ?)");
    REQUIRE(ins.isOk());
    const std::string blob("a\0b", 3);
    ins->bindCell(1, Cell::ofInt(-5)).bindCell(2, Cell::ofReal(2.5)).bindCell(3, Cell::ofText("x'y"));
    ins->bindCell(4, Cell::ofBlob(blob)).bindCell(5, Cell::null());
    REQUIRE(ins->run().isOk());
    ins->bindText(3, std::string_view()).bindBlob(4, std::string_view());  // empty, not NULL
    REQUIRE(ins->run().isOk());
    CHECK(db.lastInsertRowid() == 2);
    CHECK(db.changes() == 1);

    auto sel = db.prepare("SELECT i, d, s, b, n FROM t ORDER BY rowid");
    REQUIRE(sel.isOk());
    REQUIRE(*sel->step());
    CHECK(sel->columnInt(0) == -5);
    CHECK(sel->columnDouble(1) == 2.5);
    CHECK(sel->columnText(2) == "x'y");
    CHECK(sel->columnBlob(3) == blob);
    CHECK(sel->columnIsBlob(3));
    CHECK(sel->columnIsNull(4));
    CHECK(sel->columnCount() == 5);
    CHECK(sel->columnName(2) == "s");
    REQUIRE(*sel->step());
    CHECK_FALSE(sel->columnIsNull(2));
    CHECK(sel->columnText(2).empty());
    CHECK_FALSE(*sel->step());

    auto bad = db.prepare("SELEKT 1");
    REQUIRE_FALSE(bad.isOk());
    CHECK_THAT(bad.status().message(), Contains("preparing SELEKT 1"));
    auto empty = db.prepare("  ");
    CHECK_FALSE(empty.isOk());

    // A bind error surfaces at step, naming the parameter.
    auto one = db.prepare("SELECT ?");
    REQUIRE(one.isOk());
    one->bind(2, 1);
    auto r = one->step();
    REQUIRE_FALSE(r.isOk());
    CHECK_THAT(r.status().message(), Contains("binding parameter 2"));

    // A constraint error is invalid input, with the statement's SQL.
    REQUIRE(db.exec("CREATE TABLE u(k PRIMARY KEY)").isOk());
    REQUIRE(db.exec("INSERT INTO u VALUES(1)").isOk());
    Status dup = db.exec("INSERT INTO u VALUES(1)");
    CHECK(dup.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(dup.message(), Contains("UNIQUE constraint failed"));
    CHECK_THAT(dup.message(), Contains("INSERT INTO u VALUES(1)"));
}

TEST_CASE("Txn rolls back unless committed", "[store][db]")
{
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(db.exec("CREATE TABLE t(a)").isOk());
    {
        auto txn = Txn::begin(db);
        REQUIRE(txn.isOk());
        REQUIRE(db.exec("INSERT INTO t VALUES(1)").isOk());
        CHECK(count(db, "t") == 1);
    }
    CHECK(count(db, "t") == 0);
    CHECK(sqlite3_get_autocommit(db.handle()) == 1);
    {
        auto txn = Txn::begin(db);
        REQUIRE(txn.isOk());
        REQUIRE(db.exec("INSERT INTO t VALUES(2)").isOk());
        REQUIRE(txn->commit().isOk());
    }
    CHECK(count(db, "t") == 1);

    // BEGIN IMMEDIATE: a second writer cannot start while the first holds the lock.
    Db::Options impatient;
    impatient.busyTimeoutMs = 0;
    auto other = Db::open(dir.file("a.db"), impatient);
    REQUIRE(other.isOk());
    auto first = Txn::begin(db);
    REQUIRE(first.isOk());
    auto second = Txn::begin(*other);
    REQUIRE_FALSE(second.isOk());
    CHECK(second.status().code() == StatusCode::kUnavailable);
}

TEST_CASE("migrate creates the current schema in an empty database", "[store][schema]")
{
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    CHECK(*schemaVersion(db) == 0);
    REQUIRE(migrate(db).isOk());
    CHECK(*schemaVersion(db) == kSchemaVersion);
    for (const char* table : {"sluice_meta", "sluice_tables", "batches", "contracts", "outputs", "aggregations", "rejects",
                              "keys", "key_subjects", "producer_marks", "watermarks", "late_events", "shred_log"}) {
        INFO(table);
        CHECK(queryInt(db, std::string("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '") + table +
                               "'") == 1);
    }
    for (const char* view : {"batch_log", "dead_letters"}) {
        INFO(view);
        CHECK(queryInt(db, std::string("SELECT count(*) FROM sqlite_schema WHERE type = 'view' AND name = '") + view +
                               "'") == 1);
    }
    // Idempotent.
    REQUIRE(migrate(db).isOk());
    CHECK(*schemaVersion(db) == kSchemaVersion);
    CHECK(quickCheck(db).isOk());
}

TEST_CASE("migrate from version 1 keeps the data and fills the new columns' defaults", "[store][schema]")
{
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(migrate(db, 1).isOk());
    CHECK(*schemaVersion(db) == 1);
    CHECK(queryInt(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'batch_log'") == 0);
    REQUIRE(db.exec("INSERT INTO batches(id, opened_at, closed_at, committed_at, close_reason, requests, received, "
                    "committed, duplicates, rejected, bytes, keys_created) "
                    "VALUES(7, 1700000000000, 1700000000200, 1700000000250, 'delay', 3, 10, 8, 1, 1, 999, 2)")
                .isOk());
    REQUIRE(db.exec("INSERT INTO rejects(batch_id, received_at, reason, message, input_bytes) "
                    "VALUES(7, 1700000000100, 'not_json', 'not JSON', 5)")
                .isOk());

    REQUIRE(migrate(db).isOk());
    CHECK(*schemaVersion(db) == kSchemaVersion);
    CHECK(queryInt(db, "SELECT received FROM batches WHERE id = 7") == 10);
    CHECK(queryInt(db, "SELECT bytes FROM batches WHERE id = 7") == 999);
    CHECK(queryText(db, "SELECT close_reason FROM batches WHERE id = 7") == "delay");
    for (const char* column : {"late", "parse_us", "transform_us", "aggregate_us", "write_us"}) {
        INFO(column);
        CHECK(queryInt(db, std::string("SELECT ") + column + " FROM batches WHERE id = 7") == 0);
    }
    // The views added by version 2 read the old rows.
    CHECK(queryInt(db, "SELECT latency_ms FROM batch_log WHERE id = 7") == 250);
    CHECK(queryText(db, "SELECT opened FROM batch_log WHERE id = 7") == "2023-11-14T22:13:20.000Z");
    CHECK(queryText(db, "SELECT reason FROM dead_letters WHERE batch_id = 7") == "not_json");
    CHECK(queryText(db, "SELECT received_at FROM dead_letters WHERE batch_id = 7") == "2023-11-14T22:13:20.100Z");

    // A writer opens the migrated database and writes the new columns.
    auto w = openWriterWithSchema(dir.file("a.db"));
    CHECK(*w->lastBatchId() == 7);
    BatchBuilder b(8);
    b.batch().lateEvents = 4;
    b.batch().times.parseUs = 11;
    commitOk(*w, b.take());
    CHECK(queryInt(db, "SELECT late FROM batches WHERE id = 8") == 4);
    CHECK(queryInt(db, "SELECT parse_us FROM batches WHERE id = 8") == 11);
}

TEST_CASE("migrate refuses a database from a newer sluice", "[store][schema]")
{
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(migrate(db).isOk());
    REQUIRE(db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion + 1)).isOk());
    Status s = migrate(db);
    REQUIRE_FALSE(s.isOk());
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message() == "the database has schema version " + std::to_string(kSchemaVersion + 1) +
                             ", newer than this sluice understands (" + std::to_string(kSchemaVersion) +
                             "); upgrade sluice");
    CHECK(*schemaVersion(db) == kSchemaVersion + 1);  // untouched

    BatchWriter::Options o;
    o.path = dir.file("a.db");
    auto w = BatchWriter::open(o);
    REQUIRE_FALSE(w.isOk());
    CHECK_THAT(w.status().message(), Contains("newer than this sluice understands"));
}

TEST_CASE("a failed migration step leaves the database at its old version", "[store][schema]")
{
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(migrate(db, 1).isOk());
    // Sabotage: the 1 -> 2 step creates the view batch_log; an object of that name makes it fail.
    REQUIRE(db.exec("CREATE TABLE batch_log(x)").isOk());
    Status s = migrate(db);
    REQUIRE_FALSE(s.isOk());
    CHECK_THAT(s.message(), StartsWith("migrating the schema from version 1 to 2: "));
    CHECK(*schemaVersion(db) == 1);
    // Nothing of the step stayed: the ALTERs before the failing statement were rolled back.
    auto cols = db.prepare("SELECT count(*) FROM pragma_table_info('batches') WHERE name = 'late'");
    REQUIRE(cols.isOk());
    REQUIRE(*cols->step());
    CHECK(cols->columnInt(0) == 0);
    CHECK(sqlite3_get_autocommit(db.handle()) == 1);
}

TEST_CASE("eventsTable and derivedTable describe typed tables and readable views", "[store][schema]")
{
    const ContractSpec c = contract();
    TableDef e = eventsTable(c);
    CHECK(e.name == "events_t_shop_1_0_0");
    CHECK(e.viewName == "t_shop_1_0_0");
    CHECK(e.insertColumns == std::vector<std::string>{"batch_id", "event_id", "event_time", "received_at", "key_link",
                                                       "consent", "sid", "country", "total", "items"});
    CHECK_THAT(e.createSql, Contains("\"sid\" TEXT"));
    CHECK_THAT(e.createSql, Contains("\"total\" REAL"));
    CHECK_THAT(e.createSql, Contains("\"items\" INTEGER"));
    // A derived row keeps what differs from its event row (sid in clear), and what finds it.
    TableDef d = derivedTable(output(), c, ownFields(c));
    CHECK(d.name == "derived_out");
    CHECK(d.viewName == "out");
    CHECK(d.insertColumns == std::vector<std::string>{"event_seq", "batch_id", "key_link", "sid"});
    CHECK(d.insertCells == std::vector<size_t>{0, 1, 5, 7});  // of event_seq + the event's columns
    CHECK_THAT(d.createSql, !Contains("country") && !Contains("event_id") && !Contains("consent"));

    // A masked field is the derived row's own; a non-string one becomes TEXT (a hex digest).
    OutputSpec masked = output();
    masked.maskedFields = {"items"};
    TableDef m = derivedTable(masked, c, ownFields(c, masked));
    CHECK_THAT(m.createSql, Contains("\"items\" TEXT"));
    CHECK(m.insertColumns == std::vector<std::string>{"event_seq", "batch_id", "key_link", "sid", "items"});

    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(migrate(db).isOk());
    for (const TableDef& t : tables())
        REQUIRE(applyTable(db, t).isOk());
    // The view shows ISO times next to the epoch milliseconds.
    REQUIRE(db.exec("INSERT INTO events_t_shop_1_0_0(batch_id, event_id, event_time, received_at, key_link, consent, "
                    "sid, country, total, items) VALUES(1, 'e', 1763712000123, 1763712000200, 'k', '[0]', 's', 'NL', "
                    "4.5, 2)")
                .isOk());
    CHECK(queryText(db, "SELECT event_time FROM t_shop_1_0_0") == "2025-11-21T08:00:00.123Z");
    CHECK(queryInt(db, "SELECT event_time_ms FROM t_shop_1_0_0") == 1763712000123);
    CHECK(queryText(db, "SELECT country FROM t_shop_1_0_0") == "NL");
}

namespace {

// Every row `sql` selects, one line per row, NULL as "NULL".
std::string rowsText(Db& db, const std::string& sql)
{
    auto stmt = db.prepare(sql);
    REQUIRE(stmt.isOk());
    std::string text;
    REQUIRE(stmt->forEachRow([&](const Stmt& row) {
                    for (int c = 0; c < row.columnCount(); ++c)
                        text += std::string(c ? "|" : "") + std::string(row.columnName(c)) + "=" +
                                (row.columnIsNull(c) ? std::string("NULL") : std::string(row.columnText(c)));
                    text += "\n";
                })
                .isOk());
    return text;
}

// Two events as an events table holds them (the second without event_id and items).
void insertEvents(Db& db)
{
    REQUIRE(db.exec("INSERT INTO events_t_shop_1_0_0(batch_id, event_id, event_time, received_at, key_link, consent, "
                    "sid, country, total, items) VALUES(1, 'e1', 1763712000123, 1763712000200, 'k1', '[0]', 'enc1', "
                    "'NL', 4.5, 2), (1, NULL, 1763712000124, 1763712000201, 'k2', '[]', 'enc2', 'DE', 1.0, NULL)")
                .isOk());
}

}  // namespace

TEST_CASE("a derived view reads the shared columns from the event row: the columns and values of the older layout",
          "[store][schema]")
{
    const ContractSpec c = contract();
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(migrate(db).isOk());
    for (const TableDef& t : tables())
        REQUIRE(applyTable(db, t).isOk());
    insertEvents(db);
    REQUIRE(db.exec("INSERT INTO derived_out(event_seq, batch_id, key_link, sid) VALUES(1, 1, 'k1', 'alice')").isOk());
    CHECK(rowsText(db, "SELECT * FROM out") ==
          "seq=1|event_seq=1|batch_id=1|event_id=e1|event_time=2025-11-21T08:00:00.123Z|event_time_ms=1763712000123|"
          "received_at=2025-11-21T08:00:00.200Z|key_link=k1|consent=[0]|sid=alice|country=NL|total=4.5|items=2\n");
    // The exporters' query: the columns of an events table, times as stored.
    CHECK(rowsText(db, derivedRowsSql(output(), c, ownFields(c)) + " WHERE d.seq BETWEEN 1 AND 1 AND d.batch_id = 1") ==
          "seq=1|event_seq=1|batch_id=1|event_id=e1|event_time=1763712000123|received_at=1763712000200|key_link=k1|"
          "consent=[0]|sid=alice|country=NL|total=4.5|items=2\n");
}

TEST_CASE("a derived table of the layout before schema 6 is rebuilt with its own columns; its view reads the same",
          "[store][schema]")
{
    const ContractSpec c = contract();
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(migrate(db, 5).isOk());
    REQUIRE(applyTable(db, eventsTable(c)).isOk());
    // As sluice wrote it before schema 6: every event column repeated, a view over the table alone.
    const std::string before =
        "CREATE TABLE IF NOT EXISTS \"derived_out\"(\n  seq INTEGER PRIMARY KEY,\n  event_seq INTEGER NOT NULL,\n"
        "  batch_id INTEGER NOT NULL,\n  event_id TEXT,\n  event_time INTEGER NOT NULL,\n  received_at INTEGER NOT "
        "NULL,\n  key_link TEXT NOT NULL,\n  consent TEXT NOT NULL,\n  \"sid\" TEXT,\n  \"country\" TEXT,\n  \"total\" "
        "REAL,\n  \"items\" INTEGER)";
    REQUIRE(db.exec(before).isOk());
    REQUIRE(db.exec("INSERT INTO sluice_tables(name, create_sql) VALUES('derived_out', '" + before + "')").isOk());
    REQUIRE(db.exec("CREATE INDEX derived_out_batch ON derived_out(batch_id)").isOk());
    REQUIRE(db.exec("CREATE VIEW out AS SELECT seq, event_seq, batch_id, event_id, strftime('%Y-%m-%dT%H:%M:%fZ', "
                    "(event_time) / 1000.0, 'unixepoch') AS event_time, event_time AS event_time_ms, "
                    "strftime('%Y-%m-%dT%H:%M:%fZ', (received_at) / 1000.0, 'unixepoch') AS received_at, key_link, "
                    "consent, \"sid\", \"country\", \"total\", \"items\" FROM derived_out")
                .isOk());
    insertEvents(db);
    REQUIRE(db.exec("INSERT INTO derived_out VALUES(5, 1, 1, 'e1', 1763712000123, 1763712000200, 'k1', '[0]', 'alice', "
                    "'NL', 4.5, 2), (6, 2, 1, NULL, 1763712000124, 1763712000201, 'k2', '[]', NULL, 'DE', 1.0, NULL)")
                .isOk());
    const std::string view = rowsText(db, "SELECT * FROM out ORDER BY seq");
    REQUIRE(view.find("country=NL") != std::string::npos);

    REQUIRE(migrate(db).isOk());
    CHECK(*schemaVersion(db) == kSchemaVersion);
    const TableDef now = derivedTable(output(), c, ownFields(c));
    CHECK(checkTables(db, {now}).isOk());
    {
        auto txn = Txn::begin(db);
        REQUIRE(txn.isOk());
        REQUIRE(applyTable(db, now).isOk());
        REQUIRE(txn->commit().isOk());
    }
    CHECK(queryText(db, "SELECT create_sql FROM sluice_tables WHERE name = 'derived_out'") == now.createSql);
    CHECK(queryText(db, "SELECT group_concat(name, ',') FROM pragma_table_info('derived_out')") ==
          "seq,event_seq,batch_id,key_link,sid");
    CHECK(queryInt(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'derived_out_batch'") == 1);
    CHECK(queryInt(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'derived_out_rebuilt'") == 0);
    CHECK(rowsText(db, "SELECT * FROM out ORDER BY seq") == view);  // same rows, seq kept
    CHECK(quickCheck(db).isOk());
    // New rows go in with the current layout.
    REQUIRE(db.exec("INSERT INTO derived_out(event_seq, batch_id, key_link, sid) VALUES(2, 1, 'k2', 'bob')").isOk());
    CHECK(queryText(db, "SELECT country FROM out WHERE sid = 'bob'") == "DE");
}

TEST_CASE("applyTable creates once, accepts the same layout, refuses a changed one", "[store][schema]")
{
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(migrate(db).isOk());
    const TableDef t = eventsTable(contract());
    REQUIRE(applyTable(db, t).isOk());
    CHECK(queryText(db, "SELECT create_sql FROM sluice_tables WHERE name = 'events_t_shop_1_0_0'") == t.createSql);
    REQUIRE(applyTable(db, t).isOk());  // again: no change
    CHECK(count(db, "sluice_tables") == 1);
    CHECK(checkTables(db, {t}).isOk());

    const TableDef changed = eventsTable(contract(true));  // same ref, one more field
    Status s = applyTable(db, changed);
    REQUIRE_FALSE(s.isOk());
    CHECK_THAT(s.message(), StartsWith("table events_t_shop_1_0_0 already exists with a different layout"));
    Status c = checkTables(db, {aggTable(), changed});
    REQUIRE_FALSE(c.isOk());
    CHECK_THAT(c.message(), StartsWith("table events_t_shop_1_0_0 already exists with a different layout"));
    CHECK(checkTables(db, {aggTable()}).isOk());  // unknown tables are fine: they will be created
    CHECK(queryText(db, "SELECT create_sql FROM sluice_tables WHERE name = 'events_t_shop_1_0_0'") == t.createSql);

    // Through the writer: refused in its transaction, nothing changes.
    auto w = openWriterWithSchema(dir.file("a.db"));
    Status ws = w->applySchema(*pipeline(true), tables(true), 1);
    REQUIRE_FALSE(ws.isOk());
    CHECK_THAT(ws.message(), Contains("already exists with a different layout"));
    CHECK(count(db, "contracts") == 1);
    CHECK(queryText(db, "SELECT definition FROM contracts") == contract().definition);

    // A batch that carries the changed schema is refused before any of it is written.
    BatchBuilder b(1);
    b.event("e", "K", "NL", 1.0);
    auto change = std::make_shared<SchemaChange>();
    change->pipeline = pipeline(true);
    change->tables = tables(true);
    b.batch().schema = change;
    Status cs = commit(*w, b.take());
    REQUIRE_FALSE(cs.isOk());
    CHECK_THAT(cs.message(), Contains("already exists with a different layout"));
    CHECK(count(db, "batches") == 0);
    CHECK(count(db, kEventsTable) == 0);
}

TEST_CASE("applyTable upgrades a table of a listed older layout in place and keeps its rows", "[store][schema]")
{
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(migrate(db).isOk());
    TableDef old;
    old.name = "agg_up";
    old.createSql = "CREATE TABLE IF NOT EXISTS \"agg_up\" (\"window_start\" INTEGER NOT NULL, \"n\" INTEGER, "
                    "PRIMARY KEY (\"window_start\"))";
    REQUIRE(applyTable(db, old).isOk());
    REQUIRE(db.exec("INSERT INTO agg_up VALUES (60000, 7)").isOk());

    TableDef current = old;
    current.createSql = "CREATE TABLE IF NOT EXISTS \"agg_up\" (\"window_start\" INTEGER NOT NULL, \"n\" INTEGER, "
                        "\"people\" INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (\"window_start\"))";
    current.viewName = "up";
    current.viewSql = "CREATE VIEW \"up\" AS SELECT window_start, n FROM agg_up WHERE people >= 5";
    TableDef unlisted = current;
    // Without an upgrade from the stored layout: refused, as any other change.
    CHECK_FALSE(checkTables(db, {unlisted}).isOk());
    CHECK_FALSE(applyTable(db, unlisted).isOk());

    current.upgrades.push_back({"CREATE TABLE other (x)", {"SELECT no_such_function()"}});  // not this one
    current.upgrades.push_back({old.createSql, {"ALTER TABLE \"agg_up\" ADD COLUMN \"people\" INTEGER NOT NULL DEFAULT 0"}});
    CHECK(checkTables(db, {current}).isOk());
    REQUIRE(applyTable(db, current).isOk());
    CHECK(queryText(db, "SELECT create_sql FROM sluice_tables WHERE name = 'agg_up'") == current.createSql);
    CHECK(queryInt(db, "SELECT n FROM agg_up WHERE window_start = 60000") == 7);
    CHECK(queryInt(db, "SELECT people FROM agg_up WHERE window_start = 60000") == 0);
    CHECK(count(db, "up") == 0);
    REQUIRE(applyTable(db, current).isOk());  // now the current layout: nothing to do
    CHECK(checkTables(db, {current}).isOk());
    // The older layout is no longer what is stored: applying it is a change, refused.
    CHECK_FALSE(applyTable(db, old).isOk());
}

TEST_CASE("registerPipeline records contracts, outputs, aggregations; contracts are immutable", "[store][schema]")
{
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(migrate(db).isOk());
    REQUIRE(registerPipeline(db, *pipeline(), 42).isOk());
    CHECK(queryText(db, "SELECT table_name FROM contracts WHERE ref = 't/shop/1.0.0'") == "events_t_shop_1_0_0");
    CHECK(queryText(db, "SELECT view_name FROM contracts") == "t_shop_1_0_0");
    CHECK(queryInt(db, "SELECT first_seen FROM contracts") == 42);
    CHECK(queryText(db, "SELECT definition FROM outputs WHERE name = 'out'") ==
          R"({"type":"granular","purposes":[0],"algorithm":"hmac-sha256"})");
    CHECK(queryText(db, "SELECT table_name FROM aggregations WHERE name = 't'") == "agg_t");

    // The same definition again: accepted; first_seen is kept.
    REQUIRE(registerPipeline(db, *pipeline(), 99).isOk());
    CHECK(queryInt(db, "SELECT first_seen FROM contracts") == 42);

    // A changed definition under the same ref is refused, naming the file.
    Status s = registerPipeline(db, *pipeline(true), 100);
    REQUIRE_FALSE(s.isOk());
    CHECK(s.message() == "contracts/shop.json: contract t/shop/1.0.0 differs from the one this database already holds; "
                         "contracts are immutable, publish the change as a new version");
    CHECK(queryText(db, "SELECT definition FROM contracts") == contract().definition);

    // Outputs and aggregations may change under their names.
    auto p = std::make_shared<PipelineSpec>(*pipeline());
    p->outputs[0].type = OutputType::kCumulative;
    p->outputs[0].purposes = {2};
    p->aggregations[0].windowMs = 5000;
    REQUIRE(registerPipeline(db, *p, 101).isOk());
    CHECK(queryText(db, "SELECT definition FROM outputs WHERE name = 'out'") ==
          R"({"type":"cumulative","purposes":[2],"algorithm":"hmac-sha256"})");
    CHECK_THAT(*queryText(db, "SELECT definition FROM aggregations WHERE name = 't'"), Contains("\"window\":{\"type\":\"tumbling\",\"size\":5000}"));
}

TEST_CASE("quickCheck is ok on a fresh database and reports a damaged one", "[store][state]")
{
    TempDir dir;
    {
        Db db = openDb(dir.file("a.db"));
        REQUIRE(migrate(db).isOk());
        CHECK(quickCheck(db).isOk());
        REQUIRE(db.exec("CREATE TABLE big(x TEXT); CREATE INDEX big_x ON big(x);").isOk());
        REQUIRE(db.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
                        "INSERT INTO big SELECT printf('%08d-padding-padding-padding', i) FROM n")
                    .isOk());
        REQUIRE(checkpointTruncate(db, 1000).isOk());
    }
    // Overwrite the middle of the file (index and table pages) with noise.
    {
        std::fstream f(dir.file("a.db"), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(dir.file("a.db")) / 2));
        const std::string noise(8192, '\x5a');
        f.write(noise.data(), static_cast<std::streamsize>(noise.size()));
    }
    Db db = openDb(dir.file("a.db"));
    Status s = quickCheck(db);
    REQUIRE_FALSE(s.isOk());
    CHECK(s.code() == StatusCode::kCorruption);
}

TEST_CASE("meta settings, marks and watermarks read back", "[store][state]")
{
    TempDir dir;
    Db db = openDb(dir.file("a.db"));
    REQUIRE(migrate(db).isOk());
    CHECK_FALSE(getMeta(db, "k")->has_value());
    REQUIRE(setMeta(db, "k", std::string_view("v\0w", 3)).isOk());
    CHECK(**getMeta(db, "k") == std::string("v\0w", 3));
    REQUIRE(setMeta(db, "k", "v2").isOk());
    CHECK(**getMeta(db, "k") == "v2");

    REQUIRE(db.exec("INSERT INTO producer_marks VALUES('b', 2, 1, 3, 0), ('a', 10, 1, 1, 1), ('a', 9, 1, 2, 0)").isOk());
    std::vector<MarkRow> marks;
    REQUIRE(forEachMark(db, [&](MarkRow&& m) { marks.push_back(std::move(m)); }).isOk());
    REQUIRE(marks.size() == 3);
    CHECK(marks[0].producer == "a");
    CHECK(marks[0].seq == 9);
    CHECK(marks[0].accepted == 2);
    CHECK(marks[1].seq == 10);
    CHECK(marks[1].rejected == 1);
    CHECK(marks[2].producer == "b");

    REQUIRE(db.exec("INSERT INTO watermarks VALUES('c/x/1.0.0', 1234)").isOk());
    auto wm = loadWatermarks(db);
    REQUIRE(wm.isOk());
    REQUIRE(wm->size() == 1);
    CHECK((*wm)[0].first == "c/x/1.0.0");
    CHECK((*wm)[0].second == 1234);
}
