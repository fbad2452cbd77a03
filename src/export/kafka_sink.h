// The Kafka exporter's sink (built with meson -Dkafka=enabled/auto when librdkafka is present).
//
// Each record becomes one Kafka record on its source's topic: value = the record's JSON, key =
// its key link (events, derived rows, keys) or its group values (windows), one header
// `sluice`: "<batch>,<seq>,<source>" (seq: the row's rowid; the window start for windows).
// With keys exported, data keys go to the keys topic (value = the Tink keyset JSON, key = the key
// link; meant to be compacted), and every key link shredded afterwards (forget, retention) gets a
// tombstone there (null value, header sluice-shred), so compacted copies lose the key too.
//
// Exactly once from SQLite into the topics, across kill -9 at any moment (docs/exporters.md has
// the whole argument):
//   * the producer is idempotent, with no message timeout: within one producer session a
//     partition receives every record once, in order, with no gap (librdkafka retries until the
//     broker has it);
//   * the sink chooses each record's partition itself (murmur2 of the key, as Kafka's Java client
//     does), so the partition of a record is the same in every run;
//   * records of a partition are produced in (batch, seq) order; so at open() the last record of
//     each partition says exactly which of the records read again from the cursor that partition
//     already holds: those are skipped, the rest are produced;
//   * the cursor in the database only moves once every record of its batches was acknowledged.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/spec.h"
#include "export/sink.h"

struct rd_kafka_topic_s;  // librdkafka's rd_kafka_topic_t

namespace sluice::exports {

// The header every record carries: "<batch>,<seq>,<source>", e.g. "12,4711,acme/checkout/1.0.0"
// (the source is the rest of the value). One header instead of three (sluice-batch, sluice-seq,
// sluice-source before): librdkafka allocates each header of each record and the list holding
// them, and frees them at its delivery report (docs/performance.md).
inline constexpr const char* kRecordHeader = "sluice";
// Appends the header's value.
void appendRecordHeader(std::string& out, uint64_t batch, int64_t seq, std::string_view source);
// Reads batch and seq from the header's value; false if it is not one.
bool parseRecordHeader(std::string_view value, uint64_t& batch, int64_t& seq);

class KafkaSink final : public Sink {
public:
    // Checks the producer settings (librdkafka's own check of every property) and the secret
    // files; the error names the property.
    static Result<std::unique_ptr<KafkaSink>> create(const ExporterSpec& spec);
    ~KafkaSink() override;

    Status open(SinkPosition& position) override;
    // The state is each topic's partition count ("topic=N" lines): a record's partition follows
    // from its key and the count, and so does reading the topics back at open().
    Status checkState(std::string& state) override;
    std::string refusal() const override { return refusal_; }
    Status write(const BatchRecords& batch) override;
    Status forget(const std::vector<store::ShredEntry>& entries) override;
    Result<SinkPosition> sync(int64_t nowMs, bool force) override;
    bool wantsMore() const override;
    void close() override;

private:
    struct Handles;
    explicit KafkaSink(const ExporterSpec& spec);
    struct Header {
        std::string_view name, value;
    };
    // One record to `topic` (the key's partition of `partitions`); a null value is a tombstone.
    // Counted as pending under `opaque` (count()) until its delivery report comes.
    Status produce(const std::string& topic, rd_kafka_topic_s* rkt, int32_t partitions, std::string_view key,
                   const std::string_view* value, std::span<const Header> headers, uint64_t opaque);
    // A record produced (or, uncount, acknowledged or never produced) under `opaque`: the batch
    // (even) or shred (odd) it belongs to, in the pending counts and outstanding_.
    void count(uint64_t opaque);
    void uncount(uint64_t opaque);
    // Serves delivery reports until fewer than the in-flight limit are unacknowledged.
    Status waitForRoom();
    // The producer's fatal error or the first delivery failure, if any.
    Status producerFailure();
    // No acknowledgement for kStallMs: the brokers are down or unreachable.
    static Status stalled();
    Status reconcile(SinkPosition& position);
    // Each topic's partition count now, from the brokers.
    Result<std::map<std::string, int32_t>> partitionCounts();
    // A refusal when `now` differs from the counts the records were partitioned by.
    Status comparePartitions(const std::map<std::string, int32_t>& before, const std::map<std::string, int32_t>& now,
                             const char* since);
    void delivered(uint64_t opaque, int err, const char* message);
    // Serves delivery reports (rd_kafka_poll) and notes the time once if any record was
    // acknowledged: one clock read per poll, not one per record.
    void poll(int timeoutMs);
    friend struct KafkaCallbacks;

    ExporterSpec spec_;
    std::unique_ptr<Handles> h_;
    std::map<std::string, int32_t> partitions_;  // per topic
    // Per (topic, partition): the (batch, seq) of the last record the topic already held at open().
    std::map<std::pair<std::string, int32_t>, std::pair<uint64_t, int64_t>> resume_;
    uint64_t resumeUntil_ = 0;  // no record of a later batch can be held already
    std::map<uint64_t, uint64_t> pendingBatches_;  // batch -> records not yet acknowledged
    std::map<int64_t, uint64_t> pendingShreds_;
    uint64_t written_ = 0;
    int64_t forgotten_ = 0;
    uint64_t outstanding_ = 0;
    uint64_t acknowledged_ = 0;  // delivery reports without error, ever
    int64_t lastProgressMs_ = 0;
    std::string error_;  // the first delivery failure
    std::string refusal_;
    int64_t nextPartitionCheckMs_ = 0;
    SinkPosition durable_;
};

}  // namespace sluice::exports
