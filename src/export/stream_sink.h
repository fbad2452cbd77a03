// The stream exporter's sink: a ZeroMQ XPUB socket bound to the configured endpoint (SUB
// subscribers connect as to a PUB; the sink sees their subscriptions and builds no message for a
// topic nobody subscribed to, which PUB would copy and then drop). Each record
// is one three-part message, published only after its batch committed:
//
//   1. topic   the source's topic (by default "sluice.<contract ident>" or "sluice.<name>")
//   2. header  {"batch": 12, "index": 0, "count": 250, "seq": 4711, "key": "8a1f..."}
//              index/count: the record's position among this batch's records on this topic, so
//              that a subscriber sees a gap (a dropped message, a late join) at once
//   3. value   the record's JSON (core/row_json.h)
//
// Shredding goes out on topic "sluice.forget": header {"shred_id": 4}, value {"shred_id": 4,
// "at_ms": ..., "cause": "forget", "key_links": [...]}.
//
// PUB never blocks: a subscriber that is slower than the send high-water mark loses messages
// (and sees the gap); nothing is held for subscribers that are not connected. The cursor moves
// as messages are handed to ZeroMQ; after a restart the stream resumes from it (a subscriber
// may see the last moments again, with the same batch and index).
#pragma once

#include <memory>

#include "core/spec.h"
#include "export/sink.h"

namespace sluice::exports {

inline constexpr const char* kForgetTopic = "sluice.forget";

class StreamSink final : public Sink {
public:
    explicit StreamSink(const ExporterSpec& spec);
    ~StreamSink() override;

    Status open(SinkPosition& position) override;
    Status write(const BatchRecords& batch) override;
    // The header's `count` is the batch's records of the topic's source, before the first piece.
    bool wantsTotals() const override { return true; }
    Status forget(const std::vector<store::ShredEntry>& entries) override;
    Result<SinkPosition> sync(int64_t nowMs, bool force) override;
    void close() override;

private:
    struct Socket;
    ExporterSpec spec_;
    std::unique_ptr<Socket> socket_;
    SinkPosition position_;
};

}  // namespace sluice::exports
