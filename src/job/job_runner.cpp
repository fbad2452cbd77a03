#include "job/job_runner.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/durable_file.h"
#include "core/queue.h"
#include "core/thread_name.h"
#include "job/byte_source.h"
#include "job/input_layout.h"
#include "job/inputs.h"
#include "job/job_file.h"
#include "job/job_outputs.h"
#include "job/key_store.h"
#include "job/lane_pool.h"
#include "job/output_file.h"
#include "job/row_parser.h"
#include "store/batch_writer.h"
#include "store/job_tables.h"
#include "store/key_table.h"
#include "store/state.h"
#include "transform/key_policy.h"
#include "transform/pipeline_runtime.h"
#include "transform/transformer.h"
#include "transform/worker_pool.h"

namespace sluice::job {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using Steady = std::chrono::steady_clock;

constexpr size_t kChunkBytes = 8u << 20;       // of row text; a chunk also ends at chunk_rows
constexpr const char* kCheckpointMeta = "job_checkpoint";
// How long publishing a SQLite target waits to fold the WAL into the file (nothing else has the
// work database open by then, so it does not wait in practice).
constexpr int kCheckpointTimeoutMs = 30'000;
constexpr int64_t kDatabaseCacheBytes = 2 << 20;  // the work database only appends
// A SQLite target's: a chunk's pages stay in the cache until it commits (in rollback-journal mode
// pages that do not fit are written to the file, and journalled, before the commit).
constexpr int64_t kTargetCacheBytes = 8 << 20;
constexpr const char* kStateFile = "state.json";

// This boot of the machine (the kernel's random boot id), or "" when it cannot be read.
std::string currentBootId()
{
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string id;
    std::getline(in, id);
    return in ? id : std::string();
}

double secondsSince(Steady::time_point t) { return std::chrono::duration<double>(Steady::now() - t).count(); }

double cpuSeconds(clockid_t clock) { return static_cast<double>(cpuNs(clock)) / 1e9; }

// What a checkpoint remembers: where reading continues, and the counts so far.
struct Totals {
    uint64_t chunks = 0;
    uint64_t rows = 0, accepted = 0, rejected = 0, keysCreated = 0;
    std::map<std::string, uint64_t> byReason;
    std::vector<InputSummary> inputs;
    size_t file = 0;          // the input reading continues in
    InputPosition position;   // ... at this position (the start when {})
    std::map<std::string, uint64_t> sizes;

    Json toJson() const
    {
        Json j;
        j["chunks"] = chunks;
        j["rows"] = rows;
        j["accepted"] = accepted;
        j["rejected"] = rejected;
        j["keys_created"] = keysCreated;
        j["by_reason"] = byReason;
        j["file"] = file;
        j["offset"] = position.offset;
        j["line"] = position.line;
        j["file_rows"] = position.rows;
        j["sizes"] = sizes;
        Json per = Json::array();
        for (const InputSummary& i : inputs)
            per.push_back({i.rows, i.accepted, i.rejected});
        j["inputs"] = per;
        return j;
    }
    static Result<Totals> fromJson(const std::string& text, size_t files)
    {
        try {
            const Json j = Json::parse(text);
            Totals t;
            t.chunks = j.at("chunks").get<uint64_t>();
            t.rows = j.at("rows").get<uint64_t>();
            t.accepted = j.at("accepted").get<uint64_t>();
            t.rejected = j.at("rejected").get<uint64_t>();
            t.keysCreated = j.at("keys_created").get<uint64_t>();
            t.byReason = j.at("by_reason").get<std::map<std::string, uint64_t>>();
            t.file = j.at("file").get<size_t>();
            t.position.offset = j.at("offset").get<uint64_t>();
            t.position.line = j.at("line").get<uint64_t>();
            t.position.rows = j.at("file_rows").get<uint64_t>();
            t.sizes = j.at("sizes").get<std::map<std::string, uint64_t>>();
            const Json& per = j.at("inputs");
            if (per.size() != files)
                return Status::corruption("the checkpoint lists another number of inputs");
            for (const Json& i : per) {
                InputSummary s;
                s.rows = i.at(0).get<uint64_t>();
                s.accepted = i.at(1).get<uint64_t>();
                s.rejected = i.at(2).get<uint64_t>();
                t.inputs.push_back(s);
            }
            return t;
        } catch (const std::exception& e) {
            return Status::corruption(std::string("unreadable checkpoint: ") + e.what());
        }
    }
};

// What the writer gets for one chunk.
// A chunk's new data keys on their way into the group's key store (Runner::keyLoop), and whether
// they are there: the writer waits for it before it writes the chunk.
class KeyJob {
public:
    std::vector<KeyRecord> keys;  // their rowids are set once stored

    void finish(Status s)
    {
        std::lock_guard lock(mutex_);
        status_ = std::move(s);
        done_ = true;
        stored_.notify_all();
    }
    Status wait()
    {
        std::unique_lock lock(mutex_);
        stored_.wait(lock, [&] { return done_; });
        return status_;
    }

private:
    std::mutex mutex_;
    std::condition_variable stored_;
    bool done_ = false;
    Status status_;
};

struct Item {
    std::unique_ptr<Chunk> chunk;
    WriteBatch wb;
    std::vector<RowReject> rejects;
    // The chunk's new data keys (shared with the key stage), and its other keys (dead-letter
    // keys: the DB target's own).
    std::shared_ptr<KeyJob> dataKeys;
    std::vector<KeyRecord> otherKeys;
};

void removeQuietly(const std::string& path)
{
    std::error_code ec;
    fs::remove(path, ec);
}

void removeDatabase(const std::string& path)
{
    for (const char* suffix : {"", "-wal", "-shm", "-journal"})
        removeQuietly(path + suffix);
}

// A SQLite target left in WAL mode by a run interrupted at its end (finishOutputs): a checkpoint
// and closing the last connection fold what its WAL holds into the file and remove the WAL and its
// -shm, as an uninterrupted run does before publishing. Nothing when there is no WAL.
Status foldWal(const std::string& path)
{
    std::error_code ec;
    if (!fs::exists(path, ec) || !fs::exists(path + "-wal", ec))
        return Status::ok();
    store::Db::Options o;
    o.create = false;
    auto db = store::Db::open(path, o);
    if (!db)
        return db.status();
    return store::checkpointTruncate(*db, kCheckpointTimeoutMs).withContext(path);
}

// The transform's executor (a LanePool), timing its parallel phases: StageProfile::phases, and
// laneWait, the thread-seconds inside them when a thread ran no lane (waiting for the last lane).
class TimedExecutor final : public transform::Executor {
public:
    TimedExecutor(int threads, int lanes) : pool_(threads, lanes), busy_(static_cast<size_t>(pool_.lanes())) {}
    int lanes() const override { return pool_.lanes(); }
    void run(const std::function<void(int lane)>& task) override
    {
        const auto t0 = Steady::now();
        pool_.run([&](int lane) {
            const auto t1 = Steady::now();
            task(lane);
            busy_[static_cast<size_t>(lane)] = secondsSince(t1);
        });
        const double wall = secondsSince(t0);
        phases_ += wall;
        double busy = 0;
        for (double b : busy_)
            busy += b;
        laneWait_ += std::max(0.0, wall * pool_.threads() - busy);
    }
    double phases() const { return phases_; }
    double laneWait() const { return laneWait_; }

private:
    LanePool pool_;
    std::vector<double> busy_;
    double phases_ = 0, laneWait_ = 0;
};

class Runner {
public:
    Runner(const JobSpec& job, const privacy::KeyWrapper& wrapper, const RunOptions& options)
        : job_(job), wrapper_(wrapper), options_(options), inQueue_(2), keyQueue_(2), outQueue_(1)
    {
    }
    ~Runner()
    {
        stopThreads();
        if (targetFd_ >= 0)
            ::close(targetFd_);
        if (lockFd_ >= 0)
            ::close(lockFd_);
    }

    Result<JobSummary> run(JobSummary* onFailure);

private:
    Status lockWorkDir();
    Status start();
    Status openWorkDatabase(bool fresh);
    Status publishInterrupted(const Json& state);
    void readerLoop();
    void keyLoop();
    void writerLoop();
    Status writeItem(Item& item);
    Status finishOutputs();
    Status transformLoop();
    void fail(const Status& s)
    {
        std::lock_guard lock(failMutex_);
        if (failure_.isOk() && !s.isOk())
            failure_ = s;
        stopping_ = true;
        inQueue_.close();
        keyQueue_.close();
        outQueue_.close();
    }
    Status failure()
    {
        std::lock_guard lock(failMutex_);
        return failure_;
    }
    void stopThreads()
    {
        inQueue_.close();
        keyQueue_.close();
        outQueue_.close();
        if (reader_.joinable())
            reader_.join();
        if (keys_.joinable())
            keys_.join();
        if (writer_.joinable())
            writer_.join();
    }
    std::unique_ptr<Chunk> freeChunk()
    {
        std::lock_guard lock(freeMutex_);
        if (free_.empty())
            return std::make_unique<Chunk>();
        auto c = std::move(free_.back());
        free_.pop_back();
        return c;
    }
    void recycle(std::unique_ptr<Chunk> c)
    {
        std::lock_guard lock(freeMutex_);
        if (free_.size() < 4)
            free_.push_back(std::move(c));
    }
    std::string workDbPath() const
    {
        return job_.outputs.database.empty() ? (fs::path(job_.workDir) / "work.db").string()
                                             : partialPath(job_.outputs.database);
    }
    std::string statePath() const { return (fs::path(job_.workDir) / kStateFile).string(); }
    Status writeState(const std::string& phase, const Json& extra = {})
    {
        Json j;
        j["fingerprint"] = fingerprint_;
        j["phase"] = phase;
        j["boot_id"] = bootId_;
        if (!extra.is_null())
            j["summary"] = extra;
        return writeFileAtomically(statePath(), j.dump());
    }
    void cleanWorkDir()
    {
        if (job_.outputs.database.empty())
            removeDatabase(workDbPath());
        removeQuietly(statePath());
        removeQuietly((fs::path(job_.workDir) / "lock").string());
        std::error_code ec;
        fs::remove(job_.workDir, ec);  // only when empty
    }

    const JobSpec& job_;
    const privacy::KeyWrapper& wrapper_;
    const RunOptions& options_;
    std::vector<InputInfo> inputs_;
    std::string fingerprint_;
    std::string bootId_;
    int lockFd_ = -1;
    // A SQLite target's file, to start its writeback after each chunk (writeItem).
    int targetFd_ = -1;
    int64_t startedAtMs_ = 0;
    Steady::time_point started_;

    std::unique_ptr<KeyStore> keyStore_;
    std::unique_ptr<store::BatchWriter> workDb_;
    store::UsedKeyList usedKeys_;  // declared after workDb_: finalized first
    std::shared_ptr<const transform::PipelineRuntime> runtime_;
    std::unique_ptr<JobOutputs> outputs_;
    Totals totals_;          // the writer's: what is committed
    bool resumed_ = false;
    uint64_t resumedRows_ = 0;
    uint64_t keysUsed_ = 0;
    transform::KeyCacheCounts keyCounts_;  // the transformer's, at its end
    StageProfile profile_;

    BoundedQueue<std::unique_ptr<Chunk>> inQueue_;
    BoundedQueue<std::shared_ptr<KeyJob>> keyQueue_;
    BoundedQueue<Item> outQueue_;
    std::mutex freeMutex_;
    std::vector<std::unique_ptr<Chunk>> free_;
    std::thread reader_, keys_, writer_;
    std::mutex failMutex_;
    Status failure_;
    std::atomic<bool> stopping_{false};
    std::atomic<uint64_t> bytesRead_{0};
    std::atomic<size_t> readingFile_{0};

    // Keys the writer stored, for the transformer (which only the caller's thread touches).
    std::mutex storedMutex_;
    std::vector<KeyRecord> stored_;
};

Status Runner::lockWorkDir()
{
    std::error_code ec;
    fs::create_directories(job_.workDir, ec);
    if (ec)
        return Status::ioError("cannot create the work directory " + job_.workDir + ": " + ec.message());
    ::chmod(job_.workDir.c_str(), 0700);
    const std::string lock = (fs::path(job_.workDir) / "lock").string();
    lockFd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockFd_ < 0)
        return errnoStatus("cannot open " + lock, errno);
    if (::flock(lockFd_, LOCK_EX | LOCK_NB) != 0)
        return Status::error(StatusCode::kUnavailable, "job " + job_.id + " is already running (" + lock + " is locked)");
    return Status::ok();
}

Status Runner::openWorkDatabase(bool fresh)
{
    usedKeys_ = store::UsedKeyList();
    workDb_.reset();
    if (fresh)
        removeDatabase(workDbPath());
    store::BatchWriter::Options o;
    o.path = workDbPath();
    o.cacheBytes = job_.outputs.database.empty() ? kDatabaseCacheBytes : kTargetCacheBytes;
    std::error_code ec;
    fs::create_directories(fs::path(o.path).parent_path(), ec);
    if (ec)
        return Status::ioError("cannot create the directory of " + o.path + ": " + ec.message());
    o.sketches = transform::sketchFunctions();
    // Each chunk commits, and nothing is fsynced until the job publishes (synchronous=OFF, and the
    // outputs are not synced either): a process crash loses none of it (the kernel still holds
    // every byte written), and a run resumes only on the boot that wrote the checkpoint. After a
    // machine crash the job starts over. finishOutputs() syncs everything before publishing.
    o.syncEveryCommit = false;
    o.syncNever = true;
    // A SQLite target is written with a rollback journal while the job runs, not a WAL: the job
    // appends, and a WAL wrote every page twice (into the WAL, then by a checkpoint into the
    // file), on the writer's thread and a checkpointer's; the journal holds only the few pages a
    // commit changes that were there before. Nobody else reads the file until it is published,
    // and synchronous=OFF keeps a process crash harmless (the next open rolls the journal back).
    // finishOutputs() turns WAL on again before the file is published.
    o.rollbackJournal = !job_.outputs.database.empty();
    auto writer = store::BatchWriter::open(o);
    if (!writer)
        return writer.status().withContext("work database " + o.path);
    workDb_ = std::move(*writer);
    if (!job_.outputs.database.empty()) {
        if (targetFd_ >= 0)
            ::close(targetFd_);
        targetFd_ = ::open(o.path.c_str(), O_RDONLY | O_CLOEXEC);
    }
    ::chmod(o.path.c_str(), 0600);
    SLUICE_RETURN_IF_ERROR(transform::checkMasterKey(workDb_->db(), wrapper_).withContext(o.path));
    // The rowids (in the key store) of every key the run used; dropped before publishing.
    auto used = store::UsedKeyList::open(workDb_->db());
    if (!used)
        return used.status();
    usedKeys_ = std::move(*used);
    return workDb_->applySchema(*job_.pipeline, runtime_->schema->tables, startedAtMs_);
}

Status Runner::publishInterrupted(const Json& state)
{
    if (options_.notice)
        options_.notice("job " + job_.id + " had finished before it was interrupted; publishing its outputs");
    // Interrupted after the target went back to WAL mode (finishOutputs): its WAL and -shm would
    // stay beside the renamed target.
    if (!job_.outputs.database.empty())
        SLUICE_RETURN_IF_ERROR(foldWal(partialPath(job_.outputs.database)));
    std::vector<std::string> paths = job_.outputPaths();
    for (const std::string& path : paths) {
        const std::string partial = partialPath(path);
        std::error_code ec;
        if (fs::exists(partial, ec))
            SLUICE_RETURN_IF_ERROR(publishFile(partial, path));
    }
    (void)state;
    cleanWorkDir();
    return Status::ok();
}

Status Runner::start()
{
    SLUICE_RETURN_IF_ERROR(lockWorkDir());
    auto inputs = inspectInputs(job_);
    if (!inputs)
        return inputs.status();
    inputs_ = std::move(*inputs);
    // The chunking is part of it: the keys output is ordered within chunks, so a run cut into
    // other chunks than its checkpoint's (another version's default) starts over.
    fingerprint_ = fingerprintOf(job_, inputs_) + "|chunk_rows " + std::to_string(job_.runChunkRows());

    // An interrupted run of the same job over the same inputs?
    std::optional<Json> state;
    {
        std::ifstream in(statePath());
        if (in) {
            try {
                state = Json::parse(in);
            } catch (const std::exception&) {
                state.reset();
            }
        }
    }
    const bool same = state && state->value("fingerprint", "") == fingerprint_;
    bootId_ = currentBootId();
    if (state && !same && options_.notice)
        options_.notice("the job file or its inputs changed since job " + job_.id +
                        " was interrupted: starting over");
    if (same && state->value("phase", "") == "publishing") {
        SLUICE_RETURN_IF_ERROR(publishInterrupted(*state));
        return Status::error(StatusCode::kAlreadyExists, "published");  // tells run() it is done
    }

    auto runtime = transform::PipelineRuntime::build(job_.pipeline, wrapper_);
    if (!runtime)
        return runtime.status();
    runtime_ = *runtime;

    // The checkpoint of an unfinished run holds only on the boot that wrote it: its work database
    // and outputs were written without fsync (openWorkDatabase).
    bool resumable = same;
    if (same && (bootId_.empty() || state->value("boot_id", "") != bootId_)) {
        resumable = false;
        if (options_.notice)
            options_.notice("job " + job_.id + " was interrupted before the machine last started (its checkpoint " +
                            "may not have reached the disk): starting over");
    }
    std::optional<Totals> checkpoint;
    if (resumable) {
        SLUICE_RETURN_IF_ERROR(openWorkDatabase(false));
        auto text = store::getMeta(workDb_->db(), kCheckpointMeta);
        if (!text)
            return text.status();
        if (*text) {
            auto t = Totals::fromJson(**text, inputs_.size());
            if (!t)
                return t.status().withContext(workDbPath());
            checkpoint = std::move(*t);
        }
    }
    outputs_ = std::make_unique<JobOutputs>(job_, [&] {
        std::vector<std::string> names;
        for (const InputInfo& i : inputs_)
            names.push_back(i.name);
        return names;
    }());
    if (checkpoint) {
        Status resumed = outputs_->resume(checkpoint->sizes);
        if (!resumed) {
            // The outputs do not match the checkpoint (a file was removed, or the machine lost
            // data it had not synced): the only safe way on is from the start.
            if (options_.notice)
                options_.notice("cannot resume job " + job_.id + " (" + resumed.message() + "): starting over");
            checkpoint.reset();
            outputs_ = std::make_unique<JobOutputs>(job_, std::vector<std::string>());
        }
    }
    if (!checkpoint) {
        // A fresh run: nothing of an earlier one may remain, and outputs must not exist.
        usedKeys_ = store::UsedKeyList();
        workDb_.reset();
        if (!same || !options_.force) {
            std::vector<std::string> existing;
            for (const std::string& p : job_.outputPaths()) {
                std::error_code ec;
                if (fs::exists(p, ec))
                    existing.push_back(p);
            }
            if (!existing.empty() && !options_.force) {
                std::string list;
                for (const std::string& p : existing)
                    list += (list.empty() ? "" : ", ") + p;
                return Status::error(StatusCode::kAlreadyExists,
                                     "output(s) exist: " + list + " (use --force to replace them)");
            }
        }
        for (const std::string& p : outputs_->partialPaths())
            removeQuietly(p);
        outputs_ = std::make_unique<JobOutputs>(job_, [&] {
            std::vector<std::string> names;
            for (const InputInfo& i : inputs_)
                names.push_back(i.name);
            return names;
        }());
        SLUICE_RETURN_IF_ERROR(writeState("running"));
        SLUICE_RETURN_IF_ERROR(openWorkDatabase(true));
        SLUICE_RETURN_IF_ERROR(outputs_->create());
        totals_ = Totals{};
        totals_.inputs.resize(inputs_.size());
    } else {
        totals_ = std::move(*checkpoint);
        resumed_ = true;
        resumedRows_ = totals_.rows;
        if (options_.notice) {
            std::string where = totals_.file < inputs_.size()
                                    ? "input " + std::to_string(totals_.file + 1) + " of " +
                                          std::to_string(inputs_.size()) + " (" + inputs_[totals_.file].name +
                                          ") after row " + std::to_string(totals_.position.rows)
                                    : "the end of the inputs";
            options_.notice("resuming job " + job_.id + " from its checkpoint: " + std::to_string(totals_.rows) +
                            " row(s) were done before; continuing at " + where);
        }
    }
    for (size_t i = 0; i < inputs_.size(); ++i)
        totals_.inputs[i].path = inputs_[i].name;
    auto ks = KeyStore::open(job_.keyStore, wrapper_);
    if (!ks)
        return ks.status();
    keyStore_ = std::move(*ks);
    return Status::ok();
}

void Runner::readerLoop()
{
    nameThisThread("sluice-job-read");
    try {
        for (size_t f = totals_.file; f < inputs_.size() && !stopping_; ++f) {
            readingFile_ = f;
            const auto t0 = Steady::now();
            auto source = ByteSource::open(inputs_[f].path, job_.input.compression);
            if (!source) {
                fail(source.status());
                return;
            }
            std::unique_ptr<RecordReader> reader = job_.input.format == InputFormat::kCsv
                                                       ? makeCsvReader(**source, job_.input.csv, job_.input.maxRowBytes)
                                                       : makeJsonlReader(**source, job_.input.maxRowBytes);
            auto header = reader->header();
            if (!header) {
                fail(Status::invalid(inputs_[f].name + ": " + header.status().message()));
                return;
            }
            if (f == totals_.file && totals_.position.offset > 0) {
                if (Status s = reader->seek(totals_.position); !s) {
                    fail(s.withContext(inputs_[f].name));
                    return;
                }
            }
            uint64_t before = 0;
            for (size_t g = 0; g < f; ++g)
                before += inputs_[g].size;
            profile_.read += secondsSince(t0);
            bool more = true;
            while (more && !stopping_) {
                const auto t1 = Steady::now();
                auto chunk = freeChunk();
                chunk->clear();
                chunk->file = static_cast<uint32_t>(f);
                chunk->layout = inputs_[f].layout;
                auto read = reader->read(*chunk, job_.runChunkRows(), kChunkBytes);
                if (!read) {
                    fail(read.status().withContext(inputs_[f].name));
                    return;
                }
                more = *read;
                chunk->lastOfFile = !more;
                chunk->seal();
                bytesRead_ = before + reader->fileBytesRead();
                profile_.read += secondsSince(t1);
                if (!inQueue_.push(std::move(chunk)))
                    return;
            }
        }
        inQueue_.close();
    } catch (const std::exception& e) {
        fail(Status::internal(std::string("reader: ") + e.what()));
    }
    profile_.readCpu = cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
}

Status Runner::writeItem(Item& item)
{
    WriteBatch& wb = item.wb;
    const Chunk& chunk = *item.chunk;

    SLUICE_RETURN_IF_ERROR(item.dataKeys->wait());
    const std::vector<KeyRecord>& dataKeys = item.dataKeys->keys;
    std::vector<KeyRecord>& otherKeys = item.otherKeys;
    // Rows into the output files (written before the checkpoint that counts them). The chunk's
    // new keys are in the group's key store already (keyLoop).
    outputs_->add(wb, chunk, item.rejects);

    // The counts and the position after this chunk.
    Totals next = totals_;
    ++next.chunks;
    next.rows += chunk.rows.size();
    next.accepted += wb.record.committed;
    next.rejected += item.rejects.size();
    next.keysCreated += dataKeys.size();
    for (const RowReject& r : item.rejects)
        ++next.byReason[r.code];
    InputSummary& in = next.inputs[chunk.file];
    in.rows += chunk.rows.size();
    in.accepted += wb.record.committed;
    in.rejected += item.rejects.size();
    if (chunk.lastOfFile) {
        next.file = chunk.file + 1;
        next.position = InputPosition{};
    } else {
        next.file = chunk.file;
        next.position = chunk.end;
    }

    // One transaction in the work database: aggregates, the keys used, the DB target's rows,
    // and the checkpoint.
    // The DB target gets the job's data keys at the end, from the key store; dead-letter keys
    // (its own) now.
    wb.keys.clear();
    if (job_.outputs.database.empty()) {
        wb.inserts.clear();
        wb.subjects.clear();
        wb.deadLetters.clear();
    } else {
        for (KeyRecord& k : otherKeys)
            wb.keys.push_back(std::move(k));
        for (DeadLetter& d : wb.deadLetters) {
            // Where the row came from, in the columns a producer's request would fill.
            const RawRow& raw = chunk.rows[static_cast<size_t>(d.eventIndex)];
            d.producer = inputs_[chunk.file].name;
            d.eventIndex = static_cast<int32_t>(std::min<uint64_t>(raw.row, INT32_MAX));
        }
    }
    wb.record.id = totals_.chunks + 1;
    std::vector<std::string> shredded;
    store::CommitTiming timing;
    // The checkpoint is written in the chunk's own transaction: both commit or neither.
    SLUICE_RETURN_IF_ERROR(workDb_->beginBatch(wb, shredded));
    Status inTransaction = [&]() -> Status {
        // Every stored key the chunk used, new or made by an earlier run of the group, listed
        // once (the DB target's keys table is made from the list at the end); the keys outputs
        // get each key in the chunk that first lists it.
        std::vector<store::StoredKey> firstUsed;
        for (const KeyRecord& k : dataKeys) {
            auto added = usedKeys_.add(k.rowid);
            if (!added)
                return added.status();
            if (*added)
                firstUsed.push_back(store::StoredKey{k.rowid, k.keyLink, k.keyId, k.kind, k.contract, k.wrapped,
                                                     k.createdAtMs, k.expiresAtMs, k.lookup});
        }
        std::vector<int64_t> earlier;  // made by earlier runs, listed now
        for (int64_t rowid : wb.keysFirstUsed) {
            auto added = usedKeys_.add(rowid);
            if (!added)
                return added.status();
            if (*added)
                earlier.push_back(rowid);
        }
        if (!earlier.empty()) {
            SLUICE_RETURN_IF_ERROR(keyStore_->beginLookups());
            for (int64_t rowid : earlier) {
                auto stored = keyStore_->byRowid(rowid);
                if (!stored || !*stored) {
                    (void)keyStore_->endLookups();
                    if (!stored)
                        return stored.status();
                    return Status::corruption("key " + std::to_string(rowid) + " is missing from the key store");
                }
                firstUsed.push_back(std::move(**stored));
            }
            SLUICE_RETURN_IF_ERROR(keyStore_->endLookups());
        }
        // By link within the chunk: the same input in the same group lists the same keys in the
        // same order, whether this run made them or an earlier one did.
        std::sort(firstUsed.begin(), firstUsed.end(),
                  [](const store::StoredKey& a, const store::StoredKey& b) { return a.keyLink < b.keyLink; });
        SLUICE_RETURN_IF_ERROR(outputs_->addKeys(firstUsed, wrapper_));
        SLUICE_RETURN_IF_ERROR(outputs_->flush());
        next.sizes = outputs_->sizes();
        return store::setMeta(workDb_->db(), kCheckpointMeta, next.toJson().dump());
    }();
    if (!inTransaction) {
        workDb_->abortBatch();
        return inTransaction;
    }
    SLUICE_RETURN_IF_ERROR(workDb_->commitBatch(wb, timing));
    // The target is written without fsync (rollback journal, synchronous=OFF): the kernel is asked
    // to start writing the chunk's pages back now, as for the output files, so that the sync before
    // publishing has little left to wait for. A hint: nothing waits for it.
    if (targetFd_ >= 0)
        (void)::sync_file_range(targetFd_, 0, 0, SYNC_FILE_RANGE_WRITE);
    totals_ = std::move(next);
    return Status::ok();
}

// The key stage: a chunk's new data keys into the group's key store (a database of its own),
// while the writer is still at the chunks before; the writer waits for them before it writes the
// chunk. Every job queued is finished (when the stage failed or stopped, with that status), so
// the writer never waits for a job nobody will do.
void Runner::keyLoop()
{
    nameThisThread("sluice-job-keys");
    Status status;  // the stage's: every job after a failure gets it
    while (auto job = keyQueue_.pop()) {
        if (status.isOk() && stopping_)
            status = Status::error(StatusCode::kUnavailable, "stopped");
        if (status.isOk()) {
            const auto t0 = Steady::now();
            try {
                status = keyStore_->store((*job)->keys, SystemClock::instance().wallMs());
            } catch (const std::exception& e) {
                status = Status::internal(std::string("key store: ") + e.what());
            }
            if (!status)
                fail(status);
            else if (!(*job)->keys.empty()) {
                std::lock_guard lock(storedMutex_);
                stored_.insert(stored_.end(), (*job)->keys.begin(), (*job)->keys.end());
            }
            profile_.storeKeys += secondsSince(t0);
        }
        (*job)->finish(status);
    }
    profile_.storeKeysCpu = cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
}

void Runner::writerLoop()
{
    nameThisThread("sluice-job-wrt");
    try {
        for (;;) {
            const auto tw = Steady::now();
            auto item = outQueue_.pop();
            profile_.writerIdle += secondsSince(tw);
            if (!item)
                break;
            const auto t0 = Steady::now();
            if (Status s = writeItem(*item); !s) {
                fail(s);
                return;
            }
            recycle(std::move(item->chunk));
            profile_.write += secondsSince(t0);
            if (options_.stopAfterChunks && totals_.chunks >= options_.stopAfterChunks) {
                fail(Status::error(StatusCode::kUnavailable, "stopped after " + std::to_string(totals_.chunks) +
                                                                 " chunk(s) (test hook)"));
                return;
            }
        }
    } catch (const std::exception& e) {
        fail(Status::internal(std::string("writer: ") + e.what()));
    }
    profile_.writeCpu = cpuSeconds(CLOCK_THREAD_CPUTIME_ID);
}

Status Runner::transformLoop()
{
    TimedExecutor pool(std::max(1, options_.workers), std::max(1, options_.workers));
    transform::DailyKeys policy;
    transform::TransformOptions topts;
    topts.limits.maxEventBytes = job_.input.maxRowBytes;
    topts.deadLetterInputBytes = job_.outputs.database.empty() ? 0 : 4096;
    topts.reportKeyFirstUses = true;
    topts.keyCacheEntries = job_.keyCacheEntries;
    topts.keyDirectoryEntries = job_.keyDirectoryEntries;
    // Every chunk writes its open sessions: a job's outputs are read from the work database.
    topts.sessionSnapshotIntervalMs = 0;
    auto watermarks = store::loadWatermarks(workDb_->db());
    if (!watermarks)
        return watermarks.status();
    transform::Transformer::Parts parts{pool, wrapper_, policy, keyStore_->sources(), SystemClock::instance()};
    auto made = transform::Transformer::create(topts, std::move(parts), runtime_, *watermarks);
    if (!made)
        return made.status();
    transform::Transformer& transformer = **made;

    ConsentMapper consent(job_.consent);
    auto timeParser = TimestampParser::create(job_.timestamp);
    if (!timeParser)
        return timeParser.status();
    std::vector<RowParser> parsers;
    for (int l = 0; l < pool.lanes(); ++l)
        parsers.emplace_back(job_, consent, *timeParser, topts.limits.maxFutureMs);
    std::vector<std::vector<RowReject>> laneRejects(static_cast<size_t>(pool.lanes()));

    reader_ = std::thread([this] { readerLoop(); });
    keys_ = std::thread([this] { keyLoop(); });
    writer_ = std::thread([this] { writerLoop(); });

    Progress progress;
    progress.files = inputs_.size();
    for (const InputInfo& i : inputs_)
        progress.bytesTotal += i.size;
    uint64_t rows = totals_.rows, rejected = totals_.rejected, batch = totals_.chunks;
    profile_.start = secondsSince(started_);
    for (;;) {
        const auto tw = Steady::now();
        auto next = inQueue_.pop();
        profile_.waitRead += secondsSince(tw);
        if (!next)
            break;
        std::unique_ptr<Chunk> chunk = std::move(*next);
        {
            std::vector<KeyRecord> stored;
            {
                std::lock_guard lock(storedMutex_);
                stored.swap(stored_);
            }
            transformer.keysStored(stored);
        }
        const size_t lanes = static_cast<size_t>(pool.lanes());
        std::vector<uint32_t> bounds(lanes + 1, static_cast<uint32_t>(chunk->rows.size()));
        {
            uint64_t total = 0;
            for (const RawRow& r : chunk->rows)
                total += r.size + 16;
            uint64_t acc = 0;
            size_t l = 1;
            bounds[0] = 0;
            for (size_t r = 0; r < chunk->rows.size() && l < lanes; ++r) {
                acc += chunk->rows[r].size + 16;
                while (l < lanes && acc * lanes >= total * l)
                    bounds[l++] = static_cast<uint32_t>(r + 1);
            }
        }
        for (auto& v : laneRejects)
            v.clear();
        const int64_t now = SystemClock::instance().wallMs();
        transformer.begin(++batch, now);
        const InputLayout& layout = *chunk->layout;
        Status added = transformer.addParsed([&](transform::Transformer::Lane& lane) {
            const size_t l = static_cast<size_t>(lane.index());
            RowParser& parser = parsers[l];
            std::vector<RowReject>& rejects = laneRejects[l];
            for (uint32_t r = bounds[l]; r < bounds[l + 1]; ++r) {
                contract::ParsedEvent ev;
                RowReject reject;
                const transform::Origin origin{chunk->file, r, startedAtMs_};
                if (parser.parse(lane.validator(), *chunk, r, layout, lane.arena(), lane.nowMs(), ev, reject)) {
                    lane.accept(ev, origin);
                    continue;
                }
                if (reject.contractReason) {
                    contract::Rejection why = reject.why;
                    why.contract = 0;
                    const RawRow& raw = chunk->rows[r];
                    lane.reject(std::move(why), origin, std::string_view(chunk->text.data() + raw.offset, raw.size));
                }
                rejects.push_back(std::move(reject));
            }
        });
        BatchRecord close;
        close.closedAtMs = now;
        close.bytes = chunk->text.size();
        auto wb = transformer.finish(close);
        if (!added)
            return added;
        if (!wb)
            return wb.status();
        profile_.parse += static_cast<double>(wb->times.parseUs) / 1e6;
        profile_.transform += static_cast<double>(wb->times.transformUs) / 1e6;
        profile_.aggregate += static_cast<double>(wb->times.aggregateUs) / 1e6;
        Item item;
        item.rejects = std::move(laneRejects[0]);
        for (size_t l = 1; l < lanes; ++l)
            for (RowReject& r : laneRejects[l])
                item.rejects.push_back(std::move(r));
        laneRejects[0] = std::vector<RowReject>();
        rows += chunk->rows.size();
        rejected += item.rejects.size();
        const size_t file = chunk->file;
        item.chunk = std::move(chunk);
        item.wb = std::move(*wb);
        item.dataKeys = std::make_shared<KeyJob>();
        for (KeyRecord& k : item.wb.keys)
            (k.kind == "data" ? item.dataKeys->keys : item.otherKeys).push_back(std::move(k));
        item.wb.keys.clear();
        const auto tw2 = Steady::now();
        const bool pushed = keyQueue_.push(std::shared_ptr<KeyJob>(item.dataKeys)) && outQueue_.push(std::move(item));
        profile_.waitWrite += secondsSince(tw2);
        if (!pushed)
            break;
        if (options_.progress) {
            progress.file = file;
            progress.rows = rows;
            progress.rejected = rejected;
            progress.rowsThisRun = rows - resumedRows_;
            progress.bytesRead = bytesRead_;
            progress.seconds = secondsSince(started_);
            options_.progress(progress);
        }
    }
    keyQueue_.close();
    outQueue_.close();
    profile_.phases = pool.phases();
    profile_.laneWait = pool.laneWait();
    profile_.serial = secondsSince(started_) - profile_.start - profile_.waitRead - profile_.waitWrite - profile_.phases;
    if (reader_.joinable())
        reader_.join();
    if (keys_.joinable())
        keys_.join();
    if (writer_.joinable())
        writer_.join();
    keyCounts_ = transformer.keyCounts();
    return failure();
}

Status Runner::finishOutputs()
{
    const auto t0 = Steady::now();
    store::Db& db = workDb_->db();
    // Every row of the input is counted: the job's windows are final and complete, in its
    // aggregation files and in its SQLite target alike.
    for (const AggregationSpec& spec : job_.pipeline->aggregations)
        SLUICE_RETURN_IF_ERROR(store::markWindowsComplete(db, spec.tableName()));
    SLUICE_RETURN_IF_ERROR(outputs_->writeAggregations(db));
    // How many keys the run used, and the DB target's copy of them from the group's key store
    // (attached for these statements); the keys outputs have them already.
    SLUICE_RETURN_IF_ERROR(keyStore_->sync());
    SLUICE_RETURN_IF_ERROR(store::attachKeyStore(db, job_.keyStore));
    Status keys = Status::ok();
    auto count = store::countUsedKeys(db);
    if (count)
        keysUsed_ = static_cast<uint64_t>(*count);
    if (!job_.outputs.database.empty())
        keys = store::adoptUsedKeys(db, kCheckpointMeta);
    Status detached = store::detachKeyStore(db);
    SLUICE_RETURN_IF_ERROR(keys);
    SLUICE_RETURN_IF_ERROR(detached);
    if (!count)
        return count.status();
    SLUICE_RETURN_IF_ERROR(outputs_->sync());
    if (!job_.outputs.database.empty()) {
        // The target is published in WAL mode, as the daemon's database is (openWorkDatabase).
        // The pragma answers with the mode it is in: a switch it could not make is no error.
        auto mode = db.queryText("PRAGMA journal_mode=WAL");
        if (!mode)
            return mode.status().withContext(workDbPath());
        if (!*mode || **mode != "wal")
            return Status::ioError(workDbPath() + ": cannot switch the database to journal_mode wal");
    }
    // The work database durable before any output that needs it is published: the run wrote it
    // without fsync, so the checkpoint's own syncs (if it copied anything) are not enough.
    SLUICE_RETURN_IF_ERROR(store::checkpointFull(db));
    SLUICE_RETURN_IF_ERROR(syncFile(workDbPath()));
    if (std::error_code ec; fs::exists(workDbPath() + "-wal", ec))
        SLUICE_RETURN_IF_ERROR(syncFile(workDbPath() + "-wal"));
    profile_.publish += secondsSince(t0);
    return Status::ok();
}

Result<JobSummary> Runner::run(JobSummary* onFailure)
{
    started_ = Steady::now();
    startedAtMs_ = SystemClock::instance().wallMs();
    Status s = start();
    if (s.code() == StatusCode::kAlreadyExists && s.message() == "published") {
        JobSummary summary;
        summary.seconds = secondsSince(started_);
        summary.published = job_.outputPaths();
        return summary;
    }
    SLUICE_RETURN_IF_ERROR(s);
    const double cpuBefore = cpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
    SLUICE_RETURN_IF_ERROR(transformLoop());
    profile_.transformCpu = cpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - cpuBefore - profile_.readCpu - profile_.writeCpu -
                            profile_.storeKeysCpu;
    SLUICE_RETURN_IF_ERROR(finishOutputs());

    JobSummary summary;
    summary.inputs = totals_.inputs;
    for (size_t i = 0; i < inputs_.size(); ++i)
        summary.inputs[i].bytes = inputs_[i].size;
    summary.rows = totals_.rows;
    summary.accepted = totals_.accepted;
    summary.rejected = totals_.rejected;
    summary.rejectedByReason = totals_.byReason;
    summary.keysCreated = totals_.keysCreated;
    summary.keysUsed = keysUsed_;
    summary.keyDaysRead = keyCounts_.termsRead;
    summary.keyDaysDropped = keyCounts_.termsDropped;
    summary.resumed = resumed_;
    summary.resumedRows = resumedRows_;
    summary.rejectLimitExceeded =
        summary.rows > 0 && static_cast<double>(summary.rejected) > job_.maxRejectShare * static_cast<double>(summary.rows);

    // Publish: everything, or (over the reject limit) the rejects alone.
    const auto t0 = Steady::now();
    SLUICE_RETURN_IF_ERROR(writeState("publishing"));
    auto published = outputs_->publish(summary.rejectLimitExceeded);
    if (!published)
        return published.status();
    summary.published = std::move(*published);
    if (summary.rejectLimitExceeded) {
        for (const std::string& p : outputs_->partialPaths())
            removeQuietly(p);
        usedKeys_ = store::UsedKeyList();
        workDb_.reset();
        removeDatabase(workDbPath());
    } else if (!job_.outputs.database.empty()) {
        SLUICE_RETURN_IF_ERROR(store::checkpointTruncate(workDb_->db(), kCheckpointTimeoutMs));
        usedKeys_ = store::UsedKeyList();
        workDb_.reset();  // the last connection: SQLite folds the WAL into the file and removes it
        SLUICE_RETURN_IF_ERROR(publishFile(workDbPath(), job_.outputs.database));
        summary.published.push_back(job_.outputs.database);
    }
    usedKeys_ = store::UsedKeyList();
    workDb_.reset();
    keyStore_.reset();
    cleanWorkDir();
    profile_.publish += secondsSince(t0);
    summary.profile = profile_;
    summary.seconds = secondsSince(started_);
    if (summary.rejectLimitExceeded) {
        if (onFailure)
            *onFailure = summary;
        char share[32];
        std::snprintf(share, sizeof share, "%.1f%%",
                      100.0 * static_cast<double>(summary.rejected) / static_cast<double>(summary.rows));
        return Status::invalid(std::to_string(summary.rejected) + " of " + std::to_string(summary.rows) + " row(s) (" +
                               share + ") were rejected, more than max_reject_share " +
                               std::to_string(static_cast<int>(job_.maxRejectShare * 100)) +
                               "%: the job failed and wrote only its rejects output");
    }
    return summary;
}

}  // namespace

Result<JobSummary> runJob(const JobSpec& job, const privacy::KeyWrapper& wrapper, const RunOptions& options,
                          JobSummary* summaryOnFailure)
{
    Runner runner(job, wrapper, options);
    return runner.run(summaryOnFailure);
}

Result<CheckSummary> checkJob(const JobSpec& job, uint64_t rows)
{
    auto inputs = inspectInputs(job);
    if (!inputs)
        return inputs.status();
    CheckSummary summary;
    for (const std::string& p : job.outputPaths()) {
        std::error_code ec;
        if (fs::exists(p, ec))
            summary.existingOutputs.push_back(p);
    }
    auto parser = RowChecker::create(job);
    if (!parser)
        return parser.status();
    const int64_t now = SystemClock::instance().wallMs();
    for (size_t f = 0; f < inputs->size(); ++f) {
        const InputInfo& info = (*inputs)[f];
        CheckedInput checked;
        checked.path = info.name;
        auto source = ByteSource::open(info.path, job.input.compression);
        if (!source)
            return source.status();
        auto reader = job.input.format == InputFormat::kCsv
                          ? makeCsvReader(**source, job.input.csv, job.input.maxRowBytes)
                          : makeJsonlReader(**source, job.input.maxRowBytes);
        auto header = reader->header();
        if (!header)
            return header.status();
        Chunk chunk;
        chunk.file = static_cast<uint32_t>(f);
        auto read = reader->read(chunk, rows, kChunkBytes);
        if (!read)
            return read.status().withContext(info.name);
        chunk.seal();
        Arena arena;
        for (uint32_t r = 0; r < chunk.rows.size(); ++r) {
            contract::ParsedEvent ev;
            RowReject reject;
            ++checked.rows;
            if ((*parser)->parse(chunk, r, *info.layout, arena, now, ev, reject))
                continue;
            ++checked.rejected;
            if (checked.examples.size() < 5)
                checked.examples.push_back("line " + std::to_string(chunk.rows[r].line) + ": " +
                                           (reject.column.empty() ? "" : reject.column + ": ") + reject.code + ": " +
                                           reject.message);
        }
        summary.inputs.push_back(std::move(checked));
    }
    return summary;
}

}  // namespace sluice::job
