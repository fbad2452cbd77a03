#include "job/job_sender.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/value.h"
#include "ingest/producer.h"
#include "job/byte_source.h"
#include "job/inputs.h"
#include "job/job_outputs.h"
#include "job/output_file.h"
#include "job/row_parser.h"

namespace sluice::job {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
constexpr size_t kSendChunkBytes = 16u << 20;

// The daemon's JSON form of a checked row.
void appendEvent(std::string& out, const ContractSpec& contract, const contract::ParsedEvent& ev)
{
    out += "{\"meta\":{\"contract\":";
    appendJsonString(out, contract.ref);
    out += ",\"consent\":";
    out += contract::consentText(ev.consent);
    out += ",\"event_time\":" + std::to_string(ev.eventTimeMs);
    if (!ev.eventId.empty()) {
        out += ",\"event_id\":";
        appendJsonString(out, ev.eventId);
    }
    out += '}';
    for (size_t f = 0; f < contract.fields.size(); ++f) {
        if (!ev.fields[f].present())
            continue;
        out += ',';
        appendJsonString(out, contract.fields[f].name);
        out += ':';
        appendJson(out, ev.fields[f]);
    }
    out += '}';
}

struct SentRequest {
    uint64_t seq = 0;
    std::vector<uint32_t> rows;  // chunk row index of each event
};

struct State {
    size_t file = 0;
    InputPosition position;
    uint64_t nextSeq = 1;
    uint64_t rejectsSize = 0;
    SendSummary totals;

    Json toJson(const std::string& fingerprint) const
    {
        return Json{{"fingerprint", fingerprint}, {"file", file}, {"offset", position.offset}, {"line", position.line},
                    {"file_rows", position.rows}, {"next_seq", nextSeq}, {"rejects_size", rejectsSize},
                    {"rows", totals.rows}, {"accepted", totals.accepted}, {"rejected", totals.rejected},
                    {"by_reason", totals.rejectedByReason}, {"duplicates", totals.duplicates}};
    }
};

}  // namespace

Result<SendSummary> sendJob(const JobSpec& job, const SendOptions& options)
{
    const auto started = std::chrono::steady_clock::now();
    std::error_code ec;
    fs::create_directories(job.workDir, ec);
    if (ec)
        return Status::ioError("cannot create the work directory " + job.workDir + ": " + ec.message());
    const std::string lockPath = (fs::path(job.workDir) / "lock").string();
    const int lockFd = ::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockFd < 0)
        return Status::ioError("cannot open " + lockPath + ": " + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{lockFd};
    if (::flock(lockFd, LOCK_EX | LOCK_NB) != 0)
        return Status::error(StatusCode::kUnavailable, "job " + job.id + " is already running (" + lockPath + " is locked)");

    auto inputs = inspectInputs(job);
    if (!inputs)
        return inputs.status();
    const std::string fingerprint = fingerprintOf(job, *inputs) + "|send";
    const std::string statePath = (fs::path(job.workDir) / "send.json").string();

    State state;
    bool resumed = false;
    {
        std::ifstream in(statePath);
        if (in) {
            try {
                const Json j = Json::parse(in);
                if (j.at("fingerprint").get<std::string>() == fingerprint) {
                    state.file = j.at("file").get<size_t>();
                    state.position = {j.at("offset").get<uint64_t>(), j.at("line").get<uint64_t>(),
                                      j.at("file_rows").get<uint64_t>()};
                    state.nextSeq = j.at("next_seq").get<uint64_t>();
                    state.rejectsSize = j.at("rejects_size").get<uint64_t>();
                    state.totals.rows = j.at("rows").get<uint64_t>();
                    state.totals.accepted = j.at("accepted").get<uint64_t>();
                    state.totals.rejected = j.at("rejected").get<uint64_t>();
                    state.totals.rejectedByReason = j.at("by_reason").get<std::map<std::string, uint64_t>>();
                    state.totals.duplicates = j.at("duplicates").get<uint64_t>();
                    resumed = true;
                } else if (options.notice) {
                    options.notice("the job file or its inputs changed since job " + job.id +
                                   " was interrupted: sending from the start");
                }
            } catch (const std::exception&) {
                resumed = false;
            }
        }
    }

    OutputFile rejects;
    const bool wantRejects = job.outputs.rejects.wanted();
    if (wantRejects) {
        Status r = resumed ? rejects.resume(job.outputs.rejects.path, false, state.rejectsSize) : Status::ok();
        if (!resumed || !r) {
            if (!resumed && fs::exists(job.outputs.rejects.path, ec) && !options.force)
                return Status::error(StatusCode::kAlreadyExists,
                                     "output(s) exist: " + job.outputs.rejects.path + " (use --force to replace them)");
            SLUICE_RETURN_IF_ERROR(rejects.create(job.outputs.rejects.path, false));
            if (job.outputs.rejects.format == FileFormat::kCsv)
                rejects.write("file,line,row,column,reason,message\n");
            SLUICE_RETURN_IF_ERROR(rejects.flush());
            if (resumed) {
                // The rejects file did not match the checkpoint: start over, from the first request.
                state = State{};
                resumed = false;
            }
        }
    }
    if (resumed && options.notice)
        options.notice("resuming job " + job.id + " from its checkpoint: " + std::to_string(state.totals.rows) +
                       " row(s) were sent and acknowledged before; continuing with request " +
                       std::to_string(state.nextSeq));

    ingest::AckProducer::Options po;
    po.endpoint = options.endpoint;
    po.producerId = "job/" + job.id;
    po.firstSeq = state.nextSeq;
    po.window = 64;
    po.timeoutMs = options.timeoutMs;
    po.giveUpMs = options.giveUpMs;
    std::map<uint64_t, ingest::Reply> replies;
    po.onReply = [&](const ingest::Reply& r) { replies[r.seq] = r; };
    std::unique_ptr<ingest::AckProducer> producer;
    try {
        auto made = ingest::AckProducer::connect(std::move(po));
        if (!made)
            return made.status();
        producer = std::move(*made);
    } catch (const std::exception& e) {
        return Status::error(StatusCode::kUnavailable, std::string("ZeroMQ: ") + e.what());
    }

    auto parser = RowChecker::create(job);
    if (!parser)
        return parser.status();
    const ContractSpec& contract = job.contract();

    SendSummary& totals = state.totals;
    totals.producer = "job/" + job.id;
    totals.resumed = resumed;
    std::string body;
    auto rejectLine = [&](const InputInfo& info, const RawRow& raw, const std::string& column, std::string_view code,
                          const std::string& message) {
        ++totals.rejected;
        ++totals.rejectedByReason[std::string(code)];
        if (!wantRejects)
            return;
        appendRejectRow(rejects.buffer(), job.outputs.rejects.format, info.name, raw.line, raw.row, column, code,
                        message);
        rejects.commitBuffer();
    };

    for (size_t f = state.file; f < inputs->size(); ++f) {
        const InputInfo& info = (*inputs)[f];
        auto source = ByteSource::open(info.path, job.input.compression);
        if (!source)
            return source.status();
        auto reader = job.input.format == InputFormat::kCsv ? makeCsvReader(**source, job.input.csv, job.input.maxRowBytes)
                                                            : makeJsonlReader(**source, job.input.maxRowBytes);
        auto header = reader->header();
        if (!header)
            return header.status().withContext(info.name);
        if (f == state.file && state.position.offset > 0)
            SLUICE_RETURN_IF_ERROR(reader->seek(state.position));
        bool more = true;
        Chunk chunk;
        Arena arena;
        while (more) {
            chunk.clear();
            chunk.file = static_cast<uint32_t>(f);
            auto read = reader->read(chunk, job.sendChunkRows(), kSendChunkBytes);
            if (!read)
                return read.status().withContext(info.name);
            more = *read;
            chunk.seal();
            arena.rewind();
            std::vector<SentRequest> requests;
            SentRequest current;
            uint32_t events = 0;
            body.clear();
            auto flushRequest = [&]() -> Status {
                if (events == 0)
                    return Status::ok();
                auto seq = producer->send(body, events);
                if (!seq)
                    return seq.status();
                current.seq = *seq;
                requests.push_back(std::move(current));
                current = SentRequest{};
                totals.sent += events;
                ++totals.requests;
                events = 0;
                body.clear();
                return Status::ok();
            };
            const int64_t now = SystemClock::instance().wallMs();
            std::string event;
            for (uint32_t r = 0; r < chunk.rows.size(); ++r) {
                contract::ParsedEvent ev;
                RowReject reject;
                ++totals.rows;
                if (!(*parser)->parse(chunk, r, *info.layout, arena, now, ev, reject)) {
                    rejectLine(info, chunk.rows[r], reject.column, reject.code, reject.message);
                    continue;
                }
                event.clear();
                appendEvent(event, contract, ev);
                if (events > 0 && body.size() + 1 + event.size() > options.maxMessageBytes)
                    SLUICE_RETURN_IF_ERROR(flushRequest());
                if (events > 0)
                    body += '\n';
                body += event;
                current.rows.push_back(r);
                if (++events >= options.eventsPerMessage)
                    SLUICE_RETURN_IF_ERROR(flushRequest());
            }
            SLUICE_RETURN_IF_ERROR(flushRequest());
            SLUICE_RETURN_IF_ERROR(producer->flush());
            // Every request of the chunk is answered (or given up on): account for the replies.
            for (const SentRequest& req : requests) {
                auto it = replies.find(req.seq);
                if (it == replies.end()) {
                    ++totals.unanswered;
                    continue;
                }
                const ingest::Reply& reply = it->second;
                if (!reply.ok) {
                    // Refused as a whole: every event of it is rejected, with the daemon's reason.
                    for (uint32_t r : req.rows)
                        rejectLine(info, chunk.rows[r], {}, reply.errorReason, "refused by the daemon: " + reply.errorMessage);
                    continue;
                }
                if (reply.duplicate)
                    totals.duplicates += req.rows.size();
                totals.accepted += reply.accepted;
                for (const auto& [index, reason] : reply.errors)
                    if (index < req.rows.size())
                        rejectLine(info, chunk.rows[req.rows[index]], {}, reasonCode(reason), "refused by the daemon");
                replies.erase(it);
            }
            if (totals.unanswered) {
                totals.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
                if (wantRejects)
                    SLUICE_RETURN_IF_ERROR(rejects.flush());
                return totals;  // the checkpoint stays before this chunk
            }
            if (wantRejects)
                SLUICE_RETURN_IF_ERROR(rejects.sync());
            state.nextSeq = requests.empty() ? state.nextSeq : requests.back().seq + 1;
            if (more) {
                state.file = f;
                state.position = chunk.end;
            } else {
                state.file = f + 1;
                state.position = InputPosition{};
            }
            state.rejectsSize = wantRejects ? rejects.size() : 0;
            SLUICE_RETURN_IF_ERROR(writeFileAtomically(statePath, state.toJson(fingerprint).dump()));
        }
    }
    if (wantRejects)
        SLUICE_RETURN_IF_ERROR(rejects.publish());
    std::filesystem::remove(statePath, ec);
    std::filesystem::remove(lockPath, ec);
    std::filesystem::remove(job.workDir, ec);
    totals.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return totals;
}

}  // namespace sluice::job
