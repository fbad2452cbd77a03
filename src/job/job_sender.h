// `sluicectl job run --send`: a job's rows into a running sluiced over the acknowledged
// protocol (docs/protocol.md), instead of files. Rows are read and checked exactly as a run
// does (row_parser.h); each valid row becomes one event of the daemon's JSON form (meta.contract,
// meta.consent, meta.event_time, meta.event_id), and the events of a chunk are sent as requests
// of at most `eventsPerMessage` events.
//
// Exactly once: the producer id is "job/<id>" and the requests are numbered from 1 in input
// order, the same way in every run. A checkpoint (in the job's work directory) records where
// the acknowledged requests end; a run that was interrupted continues from it, and whatever it
// sends again that the daemon had already committed is answered "duplicate" and applied zero
// times. Only the rejects output is written (the daemon writes the rest).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/status.h"
#include "job/job_spec.h"

namespace sluice::job {

struct SendOptions {
    std::string endpoint;
    uint32_t eventsPerMessage = 500;
    uint64_t maxMessageBytes = 1'000'000;  // under the daemon's default 1 MiB
    int64_t timeoutMs = 5000;
    int64_t giveUpMs = 0;
    bool force = false;
    std::function<void(const std::string&)> notice;
};

struct SendSummary {
    std::string producer;
    uint64_t rows = 0;          // read (resumed ones included)
    uint64_t sent = 0;          // events sent in this run
    uint64_t accepted = 0;      // committed by the daemon (or, for duplicates, by an earlier run)
    uint64_t rejected = 0;      // here or by the daemon
    std::map<std::string, uint64_t> rejectedByReason;
    uint64_t duplicates = 0;    // events of requests the daemon had committed before
    uint64_t requests = 0;
    uint64_t unanswered = 0;    // requests given up on
    bool resumed = false;
    double seconds = 0;
};

Result<SendSummary> sendJob(const JobSpec& job, const SendOptions& options);

}  // namespace sluice::job
