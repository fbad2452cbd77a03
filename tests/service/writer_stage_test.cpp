// The writer thread with a real database: listeners hear of a batch only once it is durable,
// in order; a failed commit is never announced, closes the queue and reports the fault.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "service/writer_stage.h"
#include "store/fault_vfs.h"
#include "store/wal_sync.h"
#include "../store/fixtures.h"

namespace sluice::service {
namespace {

using namespace sluice::store::testing;

// Records what it is told; checks on a connection of its own that each batch it hears of is
// already in the database.
class Recorder final : public CommitListener {
public:
    Recorder(std::string name, std::string database, std::vector<std::string>& journal, std::mutex& mutex)
        : name_(std::move(name)), database_(std::move(database)), journal_(journal), mutex_(mutex)
    {
    }

    void committed(const CommitInfo& info) override
    {
        store::Db db = openDb(database_, true);
        const int64_t stored = queryInt(db, "SELECT count(*) FROM batches WHERE id = " + std::to_string(info.batch.record.id));
        std::lock_guard lock(mutex_);
        journal_.push_back(name_ + ":" + std::to_string(info.batch.record.id) + (stored == 1 ? "" : ":NOT-STORED"));
    }
    void writerStopped() override
    {
        std::lock_guard lock(mutex_);
        journal_.push_back(name_ + ":stopped");
    }

private:
    std::string name_;
    std::string database_;
    std::vector<std::string>& journal_;
    std::mutex& mutex_;
};

WriteBatch batch(uint64_t id)
{
    BatchBuilder b(id);
    b.event("e" + std::to_string(id), "link-" + std::to_string(id), "NL", 1.0);
    return b.take();
}

}  // namespace

TEST_CASE("listeners hear of each batch after its commit, in the order they were added")
{
    TempDir dir;
    const std::string path = dir.file("w.db");
    auto writer = openWriterWithSchema(path);
    BoundedQueue<WriteBatch> in(4);
    WriterStats stats;
    std::vector<std::string> journal;
    std::mutex mutex;
    Recorder first("a", path, journal, mutex), second("b", path, journal, mutex);
    WriterStage stage({}, *writer, SystemClock::instance(), in, stats);
    stage.addListener(first);
    stage.addListener(second);
    bool fatal = false;
    stage.setFatal([&](const Status&) { fatal = true; });
    stage.start();
    REQUIRE(in.push(batch(1)));
    REQUIRE(in.push(batch(2)));
    in.close();
    stage.join();
    CHECK_FALSE(fatal);
    CHECK(journal == std::vector<std::string>{"a:1", "b:1", "a:2", "b:2", "a:stopped", "b:stopped"});
    CHECK(stats.batches.load() == 2);
    CHECK(stats.events.load() == 2);
}

TEST_CASE("a failed commit is announced to no listener: the stage closes its queue and reports the fault")
{
    TempDir dir;
    const std::string path = dir.file("w.db");
    const std::string trigger = dir.file("fail-writes");
    REQUIRE(store::registerFaultVfs(trigger).isOk());
    auto writer = openWriterWithSchema(path, store::kFaultVfsName);
    BoundedQueue<WriteBatch> in(4);
    WriterStats stats;
    std::vector<std::string> journal;
    std::mutex mutex;
    Recorder recorder("a", path, journal, mutex);
    WriterStage stage({}, *writer, SystemClock::instance(), in, stats);
    stage.addListener(recorder);
    Status fault;
    stage.setFatal([&](const Status& s) { fault = s; });
    stage.start();
    REQUIRE(in.push(batch(1)));
    // Wait until batch 1 is committed, then make the disk fail.
    for (int i = 0; i < 500 && stats.batches.load() < 1; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(stats.batches.load() == 1);
    std::ofstream(trigger).put('x');
    REQUIRE(in.push(batch(2)));
    stage.join();  // returns on its own: the fault stopped it
    std::remove(trigger.c_str());
    CHECK_FALSE(fault.isOk());
    CHECK(fault.message().find("commit of batch 2 failed") != std::string::npos);
    CHECK(in.closed());
    CHECK_FALSE(in.push(batch(3)));
    CHECK(journal == std::vector<std::string>{"a:1", "a:stopped"});
    store::Db db = openDb(path, true);
    CHECK(queryInt(db, "SELECT count(*) FROM batches") == 1);
}

TEST_CASE("with a WalSync, the commits are synced on a thread of their own before the listeners hear of them, in order")
{
    TempDir dir;
    const std::string path = dir.file("w.db");
    auto writer = openWriterWithSchema(path);
    store::WalSync sync(path);
    BoundedQueue<WriteBatch> in(8);
    WriterStats stats;
    std::vector<std::string> journal;
    std::mutex mutex;
    Recorder first("a", path, journal, mutex), second("b", path, journal, mutex);
    WriterStage::Options options;
    options.walSync = &sync;
    WriterStage stage(options, *writer, SystemClock::instance(), in, stats);
    stage.addListener(first);
    stage.addListener(second);
    bool fatal = false;
    stage.setFatal([&](const Status&) { fatal = true; });
    stage.start();
    for (uint64_t id = 1; id <= 5; ++id)
        REQUIRE(in.push(batch(id)));
    in.close();
    stage.join();
    CHECK_FALSE(fatal);
    std::vector<std::string> expected;
    for (int id = 1; id <= 5; ++id) {
        expected.push_back("a:" + std::to_string(id));
        expected.push_back("b:" + std::to_string(id));
    }
    expected.push_back("a:stopped");
    expected.push_back("b:stopped");
    CHECK(journal == expected);
    CHECK(stats.batches.load() == 5);
    CHECK(stats.events.load() == 5);
}

TEST_CASE("a commit that cannot be synced is announced to no listener: the stage reports the fault")
{
    TempDir dir;
    const std::string path = dir.file("w.db");
    auto writer = openWriterWithSchema(path);
    store::WalSync sync(dir.file("missing") + "/w.db");  // its WAL cannot be opened: every sync fails
    BoundedQueue<WriteBatch> in(4);
    WriterStats stats;
    std::vector<std::string> journal;
    std::mutex mutex;
    Recorder recorder("a", path, journal, mutex);
    WriterStage::Options options;
    options.walSync = &sync;
    WriterStage stage(options, *writer, SystemClock::instance(), in, stats);
    stage.addListener(recorder);
    Status fault;
    stage.setFatal([&](const Status& s) { fault = s; });
    stage.start();
    REQUIRE(in.push(batch(1)));
    stage.join();  // returns on its own: the failed sync stopped it
    CHECK_FALSE(fault.isOk());
    CHECK(fault.message().find("batch 1 committed but could not be made durable") != std::string::npos);
    CHECK(in.closed());
    CHECK(journal == std::vector<std::string>{"a:stopped"});
    CHECK(stats.batches.load() == 0);
}

}  // namespace sluice::service

namespace sluice::service {
namespace {

WriteBatch partOf(uint64_t id, int n, bool opens, bool closes)
{
    BatchBuilder b(id);
    b.event("e" + std::to_string(id) + "-" + std::to_string(n), "link-" + std::to_string(n), "NL", 1.0);
    WriteBatch wb = b.take();
    wb.opensBatch = opens;
    wb.closesBatch = closes;
    KeyRecord k;
    k.keyLink = "key-" + std::to_string(id) + "-" + std::to_string(n);
    k.kind = "data";
    k.wrapped = "w";
    wb.keys.push_back(k);
    return wb;
}

// Collects the keys each committed batch reports.
class KeyCollector final : public CommitListener {
public:
    void committed(const CommitInfo& info) override
    {
        for (const KeyRecord& k : info.batch.keys)
            keys.push_back(k.keyLink + (k.rowid > 0 ? "" : ":no-rowid"));
        ++batches;
    }
    std::vector<std::string> keys;
    int batches = 0;
};

}  // namespace

TEST_CASE("a batch in parts is one transaction: listeners hear of it once, with every part's keys")
{
    TempDir dir;
    const std::string path = dir.file("w.db");
    auto writer = openWriterWithSchema(path);
    BoundedQueue<WriteBatch> in(8);
    WriterStats stats;
    KeyCollector keys;
    WriterStage stage({}, *writer, SystemClock::instance(), in, stats);
    stage.addListener(keys);
    stage.start();
    REQUIRE(in.push(partOf(1, 0, true, false)));
    REQUIRE(in.push(partOf(1, 1, false, false)));
    // Until the last part, other connections see nothing of the batch.
    for (int i = 0; i < 100 && writer->batchOpen() == false; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    {
        store::Db db = openDb(path, true);
        CHECK(queryInt(db, "SELECT count(*) FROM " + std::string(kEventsTable)) == 0);
    }
    REQUIRE(in.push(partOf(1, 2, false, true)));
    in.close();
    stage.join();
    CHECK(keys.batches == 1);
    CHECK(keys.keys == std::vector<std::string>{"key-1-2", "key-1-0", "key-1-1"});
    store::Db db = openDb(path, true);
    CHECK(queryInt(db, "SELECT count(*) FROM " + std::string(kEventsTable)) == 3);
    CHECK(queryInt(db, "SELECT count(*) FROM keys") == 3);
    CHECK(queryInt(db, "SELECT count(*) FROM batches") == 1);
}

TEST_CASE("a batch whose last part never comes leaves nothing behind")
{
    TempDir dir;
    const std::string path = dir.file("w.db");
    auto writer = openWriterWithSchema(path);
    BoundedQueue<WriteBatch> in(8);
    WriterStats stats;
    KeyCollector keys;
    WriterStage stage({}, *writer, SystemClock::instance(), in, stats);
    stage.addListener(keys);
    stage.start();
    REQUIRE(in.push(batch(1)));
    REQUIRE(in.push(partOf(2, 0, true, false)));
    in.close();  // the processor stopped in the middle of batch 2
    stage.join();
    CHECK(keys.batches == 1);
    store::Db db = openDb(path, true);
    CHECK(queryInt(db, "SELECT count(*) FROM " + std::string(kEventsTable)) == 1);
    CHECK(queryInt(db, "SELECT count(*) FROM keys") == 0);
    CHECK(queryInt(db, "SELECT count(*) FROM batches") == 1);
}

}  // namespace sluice::service
