// What sluicectl reprocess reads through store/: the keys by link (KeyLinkIndex) against the
// table scan of keyByLink, keys stored and shredded while it runs; and what the replay after a
// session snapshot reads (the last event of a batch, the snapshot tables).
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "fixtures.h"
#include "store/key_table.h"
#include "store/reprocess.h"

using namespace sluice;
using namespace sluice::store;
using namespace sluice::store::testing;

namespace {

// The key a link resolves to, as "keyId/wrapped", or "" for none.
std::string viaIndex(KeyLinkIndex& index, const std::string& link)
{
    auto key = index.byLink(link);
    INFO((key.isOk() ? "" : key.status().message()));
    REQUIRE(key.isOk());
    return *key ? std::to_string((*key)->keyId) + "/" + (*key)->wrapped : "";
}

std::string viaScan(Db& db, const std::string& link)
{
    auto key = keyByLink(db, link);
    REQUIRE(key.isOk());
    return *key ? std::to_string((*key)->keyId) + "/" + (*key)->wrapped : "";
}

}  // namespace

TEST_CASE("KeyLinkIndex finds every key as keyByLink does, also keys stored after it was built",
          "[store][reprocess]")
{
    TempDir dir;
    auto writer = openWriterWithSchema(dir.file("s.db"));
    BatchBuilder first(1);
    for (uint32_t i = 1; i <= 50; ++i)
        first.key(numbered("link-", i), i);
    first.key("dead-letter-day", 99, "dead_letter");
    commitOk(*writer, first.take());

    Db db = openDb(dir.file("s.db"));
    auto index = KeyLinkIndex::create(db);
    REQUIRE(index.isOk());
    CHECK(index->size() == 51);
    for (uint32_t i : {1u, 17u, 50u})
        CHECK(viaIndex(*index, numbered("link-", i)) == viaScan(db, numbered("link-", i)));
    CHECK(viaIndex(*index, "dead-letter-day") == viaScan(db, "dead-letter-day"));
    CHECK(viaIndex(*index, numbered("link-", 17)).rfind("17/", 0) == 0);
    CHECK(viaIndex(*index, "never-stored").empty());

    // Another connection (the daemon) commits a key and shreds one meanwhile.
    BatchBuilder second(2);
    second.key("link-later", 77);
    commitOk(*writer, second.take());
    {
        Db other = openDb(dir.file("s.db"));
        auto txn = Txn::begin(other);
        REQUIRE(txn.isOk());
        REQUIRE(shredKeys(other, {numbered("link-", 3)}, "test", 1).isOk());
        REQUIRE(txn->commit().isOk());
    }
    CHECK(viaIndex(*index, "link-later") == viaScan(db, "link-later"));
    CHECK(viaIndex(*index, "link-later").rfind("77/", 0) == 0);
    CHECK(index->size() == 52);
    CHECK(viaIndex(*index, numbered("link-", 3)).empty());
    CHECK(viaScan(db, numbered("link-", 3)).empty());
}

TEST_CASE("lastSeqOfBatch finds the last event of a batch across gaps in seq; session snapshots read back",
          "[store][reprocess][session]")
{
    TempDir dir;
    Db db = openDb(dir.file("s.db"));
    REQUIRE(migrate(db).isOk());
    REQUIRE(db.exec("CREATE TABLE ev(seq INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL)").isOk());
    CHECK(*lastSeqOfBatch(db, "ev", 5) == 0);
    // Batches 2, 3, 5, 9 (none of 4), seq with gaps (deleted rows).
    std::vector<std::pair<int64_t, int64_t>> rows = {{1, 2}, {2, 2}, {4, 3}, {7, 3}, {8, 5}, {12, 5}, {13, 5}, {20, 9}};
    for (auto [seq, batch] : rows)
        REQUIRE(db.exec("INSERT INTO ev VALUES(" + std::to_string(seq) + ", " + std::to_string(batch) + ")").isOk());
    CHECK(*lastSeqOfBatch(db, "ev", 1) == 0);
    CHECK(*lastSeqOfBatch(db, "ev", 2) == 2);
    CHECK(*lastSeqOfBatch(db, "ev", 3) == 7);
    CHECK(*lastSeqOfBatch(db, "ev", 4) == 7);
    CHECK(*lastSeqOfBatch(db, "ev", 5) == 13);
    CHECK(*lastSeqOfBatch(db, "ev", 8) == 13);
    CHECK(*lastSeqOfBatch(db, "ev", 9) == 20);
    CHECK(*lastSeqOfBatch(db, "ev", 100) == 20);

    CHECK_FALSE(loadSessionSnapshot(db, "visits")->has_value());
    REQUIRE(db.exec("INSERT INTO session_snapshots VALUES('visits', 7, NULL), ('other', 3, 1234)").isOk());
    REQUIRE(db.exec("INSERT INTO session_snapshot_rows VALUES('visits', 1, '[1]', x'0102'), "
                    "('other', 1, '[1]', x'09'), ('visits', 2, '[1]', x'03')")
                .isOk());
    auto visits = loadSessionSnapshot(db, "visits");
    REQUIRE(visits->has_value());
    CHECK((*visits)->batchId == 7);
    CHECK_FALSE((*visits)->maxEventTimeMs.has_value());
    CHECK((*loadSessionSnapshot(db, "other"))->maxEventTimeMs == 1234);
    std::vector<std::string> states;
    REQUIRE(forEachSessionState(db, "visits", [&](std::string_view s) {
                states.emplace_back(s);
                return Status::ok();
            }).isOk());
    std::sort(states.begin(), states.end());
    CHECK(states == std::vector<std::string>{std::string("\x01\x02", 2), std::string("\x03", 1)});
}
