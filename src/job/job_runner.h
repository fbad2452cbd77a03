// Runs a batch job (docs/jobs.md): reads its inputs in chunks, transforms each chunk with the
// daemon's Transformer (DailyKeys, the group's key store) on a WorkerPool, writes the outputs
// under partial names and publishes them when everything is done.
//
// Three threads: a reader (files -> chunks of raw rows), the caller's thread (the transform's
// phases, on a WorkerPool with the other lanes) and a writer (key store, output files, the work
// database and its checkpoints). Queues between them hold one or two chunks, so memory follows
// the chunk size, not the file size.
//
// Crash safety: each chunk commits one transaction in the job's work database (aggregates,
// the keys the job used, the DB target's rows when there is one) together with a checkpoint:
// where reading continues and how long each output file is. Output bytes are written before
// that commit. Nothing of this is fsynced until publishing (a process crash loses nothing the
// kernel was given): a run that finds the checkpoint of an interrupted run of the same job file
// over the same inputs, written on the same boot of the machine, cuts the outputs back to it and
// continues from there; after a reboot it starts over. One that finds a run interrupted while
// publishing (everything was synced by then) finishes the publishing.
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
    double write = 0;             // writer thread: key store, output files, work database
    double publish = 0;           // aggregations, keys, fsync, rename
    // CPU seconds: the reader thread, the writer thread, and the rest (the caller's thread and
    // the transform's lanes).
    double readCpu = 0;
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
