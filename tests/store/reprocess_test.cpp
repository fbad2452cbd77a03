// What sluicectl reprocess reads through store/: the keys by link (KeyLinkIndex) against the
// table scan of keyByLink, keys stored and shredded while it runs.
#include <catch2/catch.hpp>

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
