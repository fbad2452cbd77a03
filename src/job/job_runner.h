// Runs a batch job (docs/jobs.md): reads its inputs in chunks, transforms each chunk with the
// daemon's Transformer (DailyKeys, the group's key store) on a LanePool, writes the outputs
// under partial names and publishes them when everything is done.
//
// A pipeline of stages on threads of their own, with bounded queues between them (two chunks to
// the transform, one to the key stage, one to the writer), so memory follows the chunk size, not
// the file size, and chunk N+1 is read and transformed while chunk N's keys are stored and its
// rows written:
//   reader      files -> chunks of raw rows
//   transform   the caller's thread: the Transformer's phases, their lanes on a LanePool (the
//               caller and `workers - 1` threads, a lane taken by whichever is free)
//   key stage   the chunk's new keys into the group's key store
//   writer      output files, the work database (or SQLite target) and its checkpoint
//
// Crash safety: each chunk commits one transaction in the job's work database (aggregates,
// the keys the job used, the DB target's rows when there is one) together with a checkpoint:
// where reading continues and how long each output file is. Output bytes are written before
// that commit. Nothing of this is fsynced until publishing (a process crash loses nothing the
// kernel was given): a run that finds the checkpoint of an interrupted run of the same job file
// over the same inputs, written on the same boot of the machine, cuts the outputs back to it and
// continues from there; after a reboot it starts over. One that finds a run interrupted while
// publishing (everything was synced by then) finishes the publishing. The key stage may store a
// chunk's new keys before the writer has committed the chunk before it; a run that resumes finds
// them in the group's key store and uses them as keys an earlier run made (its keys output is
// the same).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "job/job_spec.h"
#include "privacy/key_wrap.h"

namespace sluice::job {

struct Progress {
    size_t file = 0;              // the input being read (index)
    size_t files = 0;
    uint64_t rows = 0;            // over the whole job so far (resumed rows included)
    uint64_t rejected = 0;
    uint64_t bytesRead = 0;       // of the input files (compressed bytes for gzip)
    uint64_t bytesTotal = 0;
    double seconds = 0;           // of this run
    uint64_t rowsThisRun = 0;
};

struct InputSummary {
    std::string path;
    uint64_t rows = 0;
    uint64_t accepted = 0;
    uint64_t rejected = 0;
    uint64_t bytes = 0;           // the file's size
};

// Time per stage, summed over the run (seconds of wall time on the thread that did it).
struct StageProfile {
    double read = 0;              // reader thread: I/O, gzip, CSV/line framing
    double parse = 0;             // lanes: parse and check rows (wall time of the parallel phase)
    double transform = 0;         // lanes: keys, encryption, derived rows, masks
    double aggregate = 0;
    double storeKeys = 0;         // key thread: new keys into the group's key store
    double write = 0;             // writer thread: output files, work database
    double publish = 0;           // aggregations, keys, fsync, rename
    // Where the stages wait for each other (seconds of wall time): setting up before the first
    // chunk, the lanes waiting for the reader's next chunk and for room in the writer's queue,
    // the writer waiting for a chunk.
    double start = 0;
    double waitRead = 0;
    double waitWrite = 0;
    double writerIdle = 0;
    // The transform's parallel phases: their wall time, and the lane-seconds lanes spent waiting
    // for the slowest lane of a phase; the caller's thread outside them (plan, aggregates,
    // handing chunks on), queue waits excluded.
    double phases = 0;
    double laneWait = 0;
    double serial = 0;
    // CPU seconds: the reader thread, the key thread, the writer thread, and the rest (the
    // transform's lanes, the caller's thread among them, and SQLite's checkpointer threads).
    double readCpu = 0;
    double storeKeysCpu = 0;
    double writeCpu = 0;
    double transformCpu = 0;
};

struct JobSummary {
    std::vector<InputSummary> inputs;
    uint64_t rows = 0;
    uint64_t accepted = 0;
    uint64_t rejected = 0;
    std::map<std::string, uint64_t> rejectedByReason;
    uint64_t keysCreated = 0;     // new keys in the group's key store
    uint64_t keysUsed = 0;        // keys in the keys output
    // Days of keys the lanes' key directories read from the key store, and dropped again to
    // stay within JobSpec::keyDirectoryEntries (this run; a day read twice counts twice).
    uint64_t keyDaysRead = 0;
    uint64_t keyDaysDropped = 0;
    bool resumed = false;
    uint64_t resumedRows = 0;     // rows done before this run
    bool rejectLimitExceeded = false;
    double seconds = 0;           // this run
    StageProfile profile;
    std::vector<std::string> published;
};

struct RunOptions {
    bool force = false;           // replace outputs that exist
    int workers = 2;              // lanes of the transform
    // Called on the caller's thread after every chunk.
    std::function<void(const Progress&)> progress;
    // Things a person should know: resuming, starting over.
    std::function<void(const std::string&)> notice;
    // Test hook: stop (as a crash would) after this many chunks were committed; 0: never.
    uint64_t stopAfterChunks = 0;
};

// kUnavailable when another run holds the job or its group; kAlreadyExists when an output
// exists and !force; kPermission for a wrong master key; kInvalidArgument when the rejects
// exceed the job's share (the summary is then in `summary`, and only the rejects were written).
Result<JobSummary> runJob(const JobSpec& job, const privacy::KeyWrapper& wrapper, const RunOptions& options,
                          JobSummary* summaryOnFailure = nullptr);

// `sluicectl job check`: the headers and the first `rows` rows of each input, parsed and checked
// against the contract without transforming or writing anything.
struct CheckedInput {
    std::string path;
    uint64_t rows = 0;
    uint64_t rejected = 0;
    std::vector<std::string> examples;   // the first few rejects: "line L: column: reason: message"
};
struct CheckSummary {
    std::vector<CheckedInput> inputs;
    std::vector<std::string> existingOutputs;  // outputs that exist (a run needs --force)
};
Result<CheckSummary> checkJob(const JobSpec& job, uint64_t rows);

}  // namespace sluice::job
