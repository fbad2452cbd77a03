#include "export/kafka_sink.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "core/clock.h"
#include "core/log.h"
#include "core/wipe.h"

namespace sluice::exports {
namespace {

// Records produced and not yet acknowledged, at most: librdkafka holds a copy of each. write()
// waits for acknowledgements when a batch would exceed it.
constexpr uint64_t kMaxInFlight = 4'000;
constexpr int64_t kStallMs = 15'000;             // no acknowledgement for this long: the sink is down
constexpr int kMetadataTimeoutMs = 5000;
constexpr int64_t kReadBack = 256;               // records read back per partition at open()
constexpr int64_t kPartitionCheckMs = 10'000;    // how often a running exporter checks the partition counts
const std::string kKeysSourceName = "keys";      // the source named in key records' sluice header

struct ConfDestroy {
    void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
struct KafkaDestroy {
    void operator()(rd_kafka_t* k) const { rd_kafka_destroy(k); }
};
struct TopicDestroy {
    void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
struct MetadataDestroy {
    void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDestroy>;
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDestroy>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDestroy>;

Result<std::string> readSecret(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Status::invalid(path + ": cannot be read");
    std::ostringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    return text;
}

// librdkafka's log lines go to our debug level (they never hold record contents): it logs every
// reconnection attempt, while the exporter logs a sink's state changes once each.
void logLine(const rd_kafka_t*, int, const char* facility, const char* message)
{
    log::debug("kafka ", facility, ": ", message);
}

// The settings of spec, checked property by property. `producer` adds the exactly-once ones.
Result<ConfPtr> buildConf(const ExporterSpec& spec, bool producer)
{
    ConfPtr conf(rd_kafka_conf_new());
    char err[512];
    auto set = [&](const std::string& name, const std::string& value, const std::string& where) -> Status {
        if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
            return Status::invalid(spec.path + ": " + where + ": " + err);
        return Status::ok();
    };
    if (producer) {
        // Idempotent, never giving up on a record: no duplicate from a retry, no gap in a partition.
        SLUICE_RETURN_IF_ERROR(set("enable.idempotence", "true", "(built in)"));
        SLUICE_RETURN_IF_ERROR(set("message.timeout.ms", "0", "(built in)"));
        SLUICE_RETURN_IF_ERROR(set("enable.gapless.guarantee", "true", "(built in)"));
        SLUICE_RETURN_IF_ERROR(set("linger.ms", "5", "(built in)"));
        // Requests point at the records' own copies instead of copying each into the request
        // buffer again: the broker thread's CPU per record -20-25% (docs/performance.md).
        SLUICE_RETURN_IF_ERROR(set("message.copy.max.bytes", "0", "(built in)"));
    } else {
        SLUICE_RETURN_IF_ERROR(set("enable.auto.commit", "false", "(built in)"));
        SLUICE_RETURN_IF_ERROR(set("enable.partition.eof", "true", "(built in)"));
        SLUICE_RETURN_IF_ERROR(set("group.id", "sluice-export-" + spec.name, "(built in)"));
    }
    for (const auto& [name, value] : spec.kafkaProperties) {
        if (producer && (name == "enable.idempotence" || name == "message.timeout.ms" || name == "transactional.id" ||
                         name == "enable.gapless.guarantee" || name == "partitioner"))
            return Status::invalid(spec.path + ": properties." + name +
                                   ": is set by sluice (exactly-once export needs it as it is)");
        if (!producer && (name == "linger.ms" || name == "acks" || name == "compression.type" ||
                          name == "compression.codec" || name == "batch.size" || name == "queue.buffering.max.ms" ||
                          name == "queue.buffering.max.messages" || name == "request.required.acks"))
            continue;  // producer-only: not for the reader of the topics' ends
        SLUICE_RETURN_IF_ERROR(set(name, value, "properties." + name));
    }
    for (const auto& [name, path] : spec.kafkaSecretFiles) {
        auto secret = readSecret(path);
        if (!secret)
            return Status::invalid(spec.path + ": secret_files." + name + ": " + secret.status().message());
        Status s = set(name, *secret, "secret_files." + name);
        wipe(*secret);
        SLUICE_RETURN_IF_ERROR(s);
    }
    rd_kafka_conf_set_log_cb(conf.get(), logLine);
    return conf;
}

bool headerInt(rd_kafka_headers_t* headers, const char* name, int64_t& out)
{
    const void* value = nullptr;
    size_t size = 0;
    if (!headers || rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR || !value)
        return false;
    const char* p = static_cast<const char*>(value);
    auto [end, ec] = std::from_chars(p, p + size, out);
    return ec == std::errc() && end == p + size;
}

// The (batch, seq) a record's headers give: its `sluice` header, or for records produced before
// that header existed, `sluice-batch` and `sluice-seq`.
bool recordPosition(rd_kafka_headers_t* headers, uint64_t& batch, int64_t& seq)
{
    const void* value = nullptr;
    size_t size = 0;
    if (headers && rd_kafka_header_get_last(headers, kRecordHeader, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        value)
        return parseRecordHeader(std::string_view(static_cast<const char*>(value), size), batch, seq);
    int64_t b = 0;
    if (!headerInt(headers, "sluice-batch", b) || b < 0 || !headerInt(headers, "sluice-seq", seq))
        return false;
    batch = static_cast<uint64_t>(b);
    return true;
}

}  // namespace

void appendRecordHeader(std::string& out, uint64_t batch, int64_t seq, std::string_view source)
{
    char text[24];
    out.append(text, std::to_chars(text, text + sizeof text, batch).ptr);
    out += ',';
    out.append(text, std::to_chars(text, text + sizeof text, seq).ptr);
    out += ',';
    out += source;
}

bool parseRecordHeader(std::string_view value, uint64_t& batch, int64_t& seq)
{
    const char* p = value.data();
    const char* const last = p + value.size();
    auto b = std::from_chars(p, last, batch);
    if (b.ec != std::errc() || b.ptr == last || *b.ptr != ',')
        return false;
    auto s = std::from_chars(b.ptr + 1, last, seq);
    return s.ec == std::errc() && s.ptr != last && *s.ptr == ',';
}

struct KafkaSink::Handles {
    KafkaPtr producer;
    std::map<std::string, TopicPtr> topics;  // after the producer: destroyed first
};

struct KafkaCallbacks {
    static void delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque)
    {
        auto* sink = static_cast<KafkaSink*>(opaque);
        sink->delivered(reinterpret_cast<uintptr_t>(m->_private), m->err,
                        m->err ? rd_kafka_err2str(m->err) : nullptr);
    }
    static void error(rd_kafka_t*, int err, const char* reason, void*)
    {
        log::debug("kafka: ", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), ": ", reason);
    }
};

KafkaSink::KafkaSink(const ExporterSpec& spec) : spec_(spec) {}

KafkaSink::~KafkaSink()
{
    close();
}

Result<std::unique_ptr<KafkaSink>> KafkaSink::create(const ExporterSpec& spec)
{
    auto producer = buildConf(spec, true);
    if (!producer)
        return producer.status();
    auto consumer = buildConf(spec, false);
    if (!consumer)
        return consumer.status();
    return std::unique_ptr<KafkaSink>(new KafkaSink(spec));
}

Status KafkaSink::open(SinkPosition& position)
{
    close();
    auto conf = buildConf(spec_, true);
    if (!conf)
        return conf.status();
    rd_kafka_conf_set_opaque(conf->get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf->get(), KafkaCallbacks::delivery);
    rd_kafka_conf_set_error_cb(conf->get(), KafkaCallbacks::error);
    char err[512];
    auto h = std::make_unique<Handles>();
    h->producer.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), err, sizeof err));
    if (!h->producer)
        return Status::invalid(spec_.path + ": " + err);
    (void)conf->release();  // rd_kafka_new took it

    std::vector<std::string> topics;
    for (const ExportSourceSpec& s : spec_.sources)
        topics.push_back(s.topic);
    if (spec_.keys)
        topics.push_back(spec_.keysTopic);
    partitions_.clear();
    for (const std::string& name : topics) {
        TopicPtr topic(rd_kafka_topic_new(h->producer.get(), name.c_str(), nullptr));
        if (!topic)
            return Status::invalid("topic " + name + ": " + rd_kafka_err2str(rd_kafka_last_error()));
        h->topics.emplace(name, std::move(topic));
    }
    h_ = std::move(h);
    auto counts = partitionCounts();
    if (!counts) {
        h_.reset();
        return counts.status();
    }
    partitions_ = std::move(*counts);
    SLUICE_RETURN_IF_ERROR(reconcile(position));
    durable_ = position;
    written_ = position.batchId;
    forgotten_ = position.shredId;
    pendingBatches_.clear();
    pendingShreds_.clear();
    outstanding_ = 0;
    error_.clear();
    lastProgressMs_ = SystemClock::instance().wallMs();
    nextPartitionCheckMs_ = lastProgressMs_ + kPartitionCheckMs;
    return Status::ok();
}

Result<std::map<std::string, int32_t>> KafkaSink::partitionCounts()
{
    std::map<std::string, int32_t> counts;
    for (const auto& [name, topic] : h_->topics) {
        const rd_kafka_metadata_t* raw = nullptr;
        const rd_kafka_resp_err_t e = rd_kafka_metadata(h_->producer.get(), 0, topic.get(), &raw, kMetadataTimeoutMs);
        std::unique_ptr<const rd_kafka_metadata_t, MetadataDestroy> md(raw);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            return Status::ioError("Kafka is not reachable (metadata of topic " + name + "): " + rd_kafka_err2str(e));
        if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topics[0].partition_cnt < 1)
            return Status::ioError("topic " + name + " is not available: " +
                                   rd_kafka_err2str(md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN));
        counts[name] = md->topics[0].partition_cnt;
    }
    return counts;
}

Status KafkaSink::comparePartitions(const std::map<std::string, int32_t>& before,
                                    const std::map<std::string, int32_t>& now, const char* since)
{
    for (const auto& [name, count] : now) {
        auto it = before.find(name);
        if (it == before.end() || it->second == count)
            continue;
        refusal_ = "topic " + name + " has " + std::to_string(count) + " partitions, " + std::to_string(it->second) +
                   " " + since + ": records are partitioned by key and count, and resuming without duplicates "
                   "needs the same count; the exporter stops (docs/exporters.md, 'Partition counts')";
        return Status::invalid(refusal_);
    }
    return Status::ok();
}

Status KafkaSink::checkState(std::string& state)
{
    std::map<std::string, int32_t> saved;
    std::istringstream lines(state);
    for (std::string line; std::getline(lines, line);) {
        const size_t eq = line.rfind('=');
        if (eq != std::string::npos)
            saved[line.substr(0, eq)] = std::atoi(line.c_str() + eq + 1);
    }
    SLUICE_RETURN_IF_ERROR(comparePartitions(saved, partitions_, "when the exporter last wrote to it"));
    state.clear();
    for (const auto& [name, count] : partitions_)
        state += name + "=" + std::to_string(count) + "\n";
    return Status::ok();
}

// Reads the end of every partition back: what the topics already hold.
Status KafkaSink::reconcile(SinkPosition& position)
{
    resume_.clear();
    resumeUntil_ = 0;
    auto conf = buildConf(spec_, false);
    if (!conf)
        return conf.status();
    char err[512];
    KafkaPtr consumer(rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), err, sizeof err));
    if (!consumer)
        return Status::invalid(spec_.path + ": " + err);
    (void)conf->release();
    for (const auto& [name, count] : partitions_) {
        TopicPtr topic(rd_kafka_topic_new(consumer.get(), name.c_str(), nullptr));
        if (!topic)
            return Status::ioError("topic " + name + ": " + rd_kafka_err2str(rd_kafka_last_error()));
        for (int32_t p = 0; p < count; ++p) {
            int64_t low = 0, high = 0;
            rd_kafka_resp_err_t e =
                rd_kafka_query_watermark_offsets(consumer.get(), name.c_str(), p, &low, &high, kMetadataTimeoutMs);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
                return Status::ioError("reading the end of " + name + "/" + std::to_string(p) + ": " + rd_kafka_err2str(e));
            if (high <= low)
                continue;
            if (rd_kafka_consume_start(topic.get(), p, std::max(low, high - kReadBack)) != 0)
                return Status::ioError("reading " + name + "/" + std::to_string(p) + ": " +
                                       rd_kafka_err2str(rd_kafka_last_error()));
            std::optional<std::pair<uint64_t, int64_t>> last;
            const int64_t deadline = SystemClock::instance().wallMs() + 30'000;
            Status failure;
            for (;;) {
                rd_kafka_message_t* m = rd_kafka_consume(topic.get(), p, 1000);
                if (!m) {
                    if (SystemClock::instance().wallMs() > deadline) {
                        failure = Status::ioError("reading " + name + "/" + std::to_string(p) + " timed out");
                        break;
                    }
                    continue;
                }
                std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> msg(m, rd_kafka_message_destroy);
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    break;
                if (m->err) {
                    failure = Status::ioError("reading " + name + "/" + std::to_string(p) + ": " + rd_kafka_message_errstr(m));
                    break;
                }
                rd_kafka_headers_t* headers = nullptr;
                rd_kafka_message_headers(m, &headers);
                uint64_t batch = 0;
                int64_t seq = 0, shred = 0;
                if (recordPosition(headers, batch, seq))
                    last = std::make_pair(batch, seq);
                if (headerInt(headers, "sluice-shred", shred))
                    position.shredId = std::max(position.shredId, shred);
                if (m->offset >= high - 1)
                    break;
            }
            rd_kafka_consume_stop(topic.get(), p);
            SLUICE_RETURN_IF_ERROR(failure);
            if (last) {
                resume_[{name, p}] = *last;
                resumeUntil_ = std::max(resumeUntil_, last->first);
            }
        }
    }
    if (resumeUntil_ > position.batchId)
        log::notice("exporter '", spec_.name, "': the topics hold records up to batch ", resumeUntil_,
                    "; those already there are skipped");
    return Status::ok();
}

Status KafkaSink::produce(const std::string& topic, rd_kafka_topic_t* rkt, int32_t partitions, std::string_view key,
                          const std::string_view* value, std::span<const Header> headers, uint64_t opaque)
{
    const int32_t partition = rd_kafka_msg_partitioner_murmur2(rkt, key.data(), key.size(), partitions, nullptr, nullptr);
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
    for (const Header& h : headers)
        rd_kafka_header_add(hdrs, h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                            static_cast<ssize_t>(h.value.size()));
    // Counted before it is produced: producev() may be retried after a poll, and a poll may serve
    // its delivery report.
    count(opaque);
    int64_t deadline = 0;  // read from the clock only when librdkafka's queue is full
    for (;;) {
        const rd_kafka_resp_err_t e = rd_kafka_producev(
            h_->producer.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key.data(), key.size()),
            RD_KAFKA_V_VALUE(value ? const_cast<char*>(value->data()) : nullptr, value ? value->size() : 0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(opaque))), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return Status::ok();  // the record owns the headers now
        const int64_t now = e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? SystemClock::instance().wallMs() : 0;
        if (deadline == 0)
            deadline = now + 10'000;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || now > deadline) {
            rd_kafka_headers_destroy(hdrs);
            uncount(opaque);
            return Status::ioError("producing to " + topic + ": " + rd_kafka_err2str(e));
        }
        poll(50);
    }
}

Status KafkaSink::write(const BatchRecords& batch)
{
    std::string header;  // "<batch>,<seq>,<source>": one header per record, not three
    for (const BatchRecords::Part& part : batch.parts) {
        const bool keys = part.source == BatchRecords::kKeysSource;
        const std::string& topic = keys ? spec_.keysTopic : spec_.sources[part.source].topic;
        const std::string& sourceName = keys ? kKeysSourceName : spec_.sources[part.source].name;
        rd_kafka_topic_t* rkt = h_->topics.at(topic).get();
        const int32_t partitions = partitions_.at(topic);
        for (const Record& r : *part.records) {
            if (batch.batchId <= resumeUntil_) {
                const int32_t p =
                    rd_kafka_msg_partitioner_murmur2(rkt, r.key.data(), r.key.size(), partitions, nullptr, nullptr);
                auto it = resume_.find({topic, p});
                if (it != resume_.end() && std::make_pair(batch.batchId, r.seq) <= it->second)
                    continue;  // the partition already holds it
            }
            header.clear();
            appendRecordHeader(header, batch.batchId, r.seq, sourceName);
            const Header headers[] = {{kRecordHeader, header}};
            if (outstanding_ >= kMaxInFlight)
                SLUICE_RETURN_IF_ERROR(waitForRoom());
            SLUICE_RETURN_IF_ERROR(produce(topic, rkt, partitions, r.key, &r.value, headers, batch.batchId << 1));
        }
    }
    if (batch.complete)
        written_ = batch.batchId;  // durable once nothing of it or before it is pending (sync())
    poll(0);
    return Status::ok();
}

Status KafkaSink::producerFailure()
{
    char reason[512];
    if (const rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(h_->producer.get(), reason, sizeof reason))
        return Status::ioError(std::string("Kafka producer failed: ") + rd_kafka_err2name(fatal) + ": " + reason);
    if (!error_.empty())
        return Status::ioError(error_);
    return Status::ok();
}

Status KafkaSink::stalled()
{
    return Status::ioError("no acknowledgement from Kafka for " + std::to_string(kStallMs / 1000) +
                           " s (brokers down or unreachable)");
}

Status KafkaSink::waitForRoom()
{
    const int64_t since = SystemClock::instance().wallMs();
    while (outstanding_ >= kMaxInFlight) {
        poll(10);
        SLUICE_RETURN_IF_ERROR(producerFailure());
        if (SystemClock::instance().wallMs() - std::max(since, lastProgressMs_) > kStallMs)
            return stalled();
    }
    return Status::ok();
}

Status KafkaSink::forget(const std::vector<store::ShredEntry>& entries)
{
    for (const store::ShredEntry& e : entries) {
        if (spec_.keys) {
            for (const std::string& link : e.keyLinks) {
                const std::string shred = std::to_string(e.id);
                const Header headers[] = {{"sluice-shred", shred}, {"sluice-cause", e.cause}};
                SLUICE_RETURN_IF_ERROR(produce(spec_.keysTopic, h_->topics.at(spec_.keysTopic).get(),
                                               partitions_.at(spec_.keysTopic), link, nullptr, headers,
                                               (static_cast<uint64_t>(e.id) << 1) | 1));
            }
        }
        forgotten_ = e.id;
    }
    return Status::ok();
}

void KafkaSink::delivered(uint64_t opaque, int err, const char* message)
{
    if (err) {
        if (error_.empty())
            error_ = std::string("Kafka refused a record: ") + (message ? message : "?");
        return;
    }
    ++acknowledged_;
    uncount(opaque);
}

void KafkaSink::poll(int timeoutMs)
{
    const uint64_t before = acknowledged_;
    rd_kafka_poll(h_->producer.get(), timeoutMs);
    if (acknowledged_ != before)
        lastProgressMs_ = SystemClock::instance().wallMs();
}

void KafkaSink::count(uint64_t opaque)
{
    ++outstanding_;
    if (opaque & 1)
        ++pendingShreds_[static_cast<int64_t>(opaque >> 1)];
    else
        ++pendingBatches_[opaque >> 1];
}

void KafkaSink::uncount(uint64_t opaque)
{
    --outstanding_;
    if (opaque & 1) {
        auto it = pendingShreds_.find(static_cast<int64_t>(opaque >> 1));
        if (it != pendingShreds_.end() && --it->second == 0)
            pendingShreds_.erase(it);
    } else {
        auto it = pendingBatches_.find(opaque >> 1);
        if (it != pendingBatches_.end() && --it->second == 0)
            pendingBatches_.erase(it);
    }
}

Result<SinkPosition> KafkaSink::sync(int64_t nowMs, bool force)
{
    if (!h_)
        return durable_;
    if (force && outstanding_ > 0) {
        const uint64_t before = acknowledged_;
        rd_kafka_flush(h_->producer.get(), 10'000);
        if (acknowledged_ != before)
            lastProgressMs_ = SystemClock::instance().wallMs();
    }
    poll(0);
    SLUICE_RETURN_IF_ERROR(producerFailure());
    if (nowMs >= nextPartitionCheckMs_) {
        nextPartitionCheckMs_ = nowMs + kPartitionCheckMs;
        auto counts = partitionCounts();
        if (!counts)
            return counts.status();
        SLUICE_RETURN_IF_ERROR(comparePartitions(partitions_, *counts, "when the exporter started writing to it"));
    }
    durable_.batchId = pendingBatches_.empty() ? written_ : pendingBatches_.begin()->first - 1;
    durable_.shredId = pendingShreds_.empty() ? forgotten_ : pendingShreds_.begin()->first - 1;
    if (outstanding_ == 0)
        lastProgressMs_ = nowMs;
    else if (nowMs - lastProgressMs_ > kStallMs)
        return stalled();
    return durable_;
}

bool KafkaSink::wantsMore() const
{
    return outstanding_ < kMaxInFlight;
}

void KafkaSink::close()
{
    if (!h_)
        return;
    // What is still queued is dropped: the cursor has not passed it, and open() finds out what
    // the topics got.
    rd_kafka_purge(h_->producer.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(h_->producer.get(), 0);
    h_->topics.clear();
    h_.reset();
}

}  // namespace sluice::exports
