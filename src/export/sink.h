// What an exporter hands a sink (a directory of files, a ZeroMQ XPUB socket, Kafka), and what a
// sink promises back. Every call comes from the exporter's own thread.
//
// Records arrive batch by batch in commit order (within a batch: source by source, rows in
// rowid order). A large batch arrives in pieces (BatchRecords::opens, complete): a source's rows
// a rowid span at a time, so that what an exporter holds is bounded by records, not by batches.
// A sink treats a batch as written only with its last piece. A sink reports which batches are durable in it; the exporter saves that as its
// cursor in the database. After a crash the exporter reads again from the cursor, and open()
// first moves the cursor forward to what the sink already holds (files already renamed, records
// already in Kafka), so nothing is sent twice.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/arena.h"
#include "core/status.h"
#include "store/committed_reader.h"

namespace sluice::exports {

// One record: a row of a source, or a key. Its text lives in the RecordSet that holds it.
struct Record {
    int64_t seq = 0;            // the row's rowid (events, derived rows, keys) or window start (windows)
    std::string_view key;       // key link (events, derived rows, keys), group values (windows)
    std::string_view value;     // JSON: the row (row_json.h), or the Tink keyset of a key
    int64_t expiresAtMs = 0;    // keys only
    std::string_view contract;  // keys only: the key's contract (policyId in the keys CSV)
};

// A batch's records of one source. Their text is copied into an arena of 64 KiB pieces, so that
// reading a batch costs a few allocations instead of two per record, and freeing it gives whole
// pieces back. Built by one thread, then read-only.
class RecordSet {
public:
    // Appends a record whose key, value and contract are copied into the set.
    void add(int64_t seq, std::string_view key, std::string_view value, int64_t expiresAtMs = 0,
             std::string_view contract = {})
    {
        records_.push_back({seq, arena_.copy(key), arena_.copy(value), expiresAtMs, arena_.copy(contract)});
    }
    void reserve(size_t n) { records_.reserve(n); }

    size_t size() const { return records_.size(); }
    bool empty() const { return records_.empty(); }
    const Record& operator[](size_t i) const { return records_[i]; }
    std::vector<Record>::const_iterator begin() const { return records_.begin(); }
    std::vector<Record>::const_iterator end() const { return records_.end(); }
    // Memory held: the text and the record array.
    size_t bytes() const { return arena_.bytes() + records_.capacity() * sizeof(Record); }

private:
    Arena arena_;
    std::vector<Record> records_;
};

// A batch's records of one source, read and encoded once and shared by every exporter of that
// source (ExportFeed): read-only.
using SharedRecords = std::shared_ptr<const RecordSet>;

struct BatchRecords {
    static constexpr uint32_t kKeysSource = UINT32_MAX;

    struct Part {
        uint32_t source = 0;  // index into ExporterSpec::sources, or kKeysSource
        SharedRecords records;
        size_t index = 0;  // of its first record among the batch's records of that source
        // The batch's records of that source, counted when its first piece was read; 0 for a
        // source read in pieces when the sink does not want totals (Sink::wantsTotals()).
        size_t total = 0;
    };

    uint64_t batchId = 0;
    int64_t committedAtMs = 0;
    std::vector<Part> parts;  // source by source; each part's records in seq order
    bool opens = true;     // holds the batch's first records (or it is whole)
    bool complete = true;  // holds its last records: the batch is written with this call

    bool empty() const
    {
        for (const Part& p : parts)
            if (!p.records->empty())
                return false;
        return true;
    }
};

// Where a sink stands: everything up to these is durable in it.
struct SinkPosition {
    uint64_t batchId = 0;
    int64_t shredId = 0;
    bool operator==(const SinkPosition&) const = default;
};

class Sink {
public:
    virtual ~Sink() = default;

    // Connects or opens, and reconciles `position` (the database cursor) with what the sink
    // already holds, moving it forward if the sink is ahead. Called again after a failure.
    virtual Status open(SinkPosition& position) = 0;
    // The sink's own state kept with the cursor (export_cursors.state; "" for a new exporter):
    // checks it against the sink right after open(), before anything is written, and updates
    // it. A mismatch the exporter cannot get past (a Kafka topic's partition count changed)
    // fails and makes refusal() say why.
    virtual Status checkState(std::string& /*state*/) { return Status::ok(); }
    // Non-empty once the sink refuses to go on until an operator acts: the exporter stops
    // retrying (sluice_export_refused) until it is reconfigured or the daemon restarts.
    virtual std::string refusal() const { return {}; }
    // One committed batch's records (possibly none), or a piece of them (`opens`, `complete`).
    // The records are shared with other exporters: a sink copies what it keeps.
    virtual Status write(const BatchRecords& batch) = 0;
    // Shredding recorded since the last call (forget, retention), in shred_log order.
    virtual Status forget(const std::vector<store::ShredEntry>& entries) = 0;
    // Makes written data durable when it is due (or now, with `force`), and returns what is
    // durable. A sink may also make data durable on its own (Kafka acknowledgements).
    virtual Result<SinkPosition> sync(int64_t nowMs, bool force) = 0;
    // True if write() needs Part::total for the sources read in pieces (a count per batch and
    // source, an extra query).
    virtual bool wantsTotals() const { return false; }
    // False while the sink holds as much in flight as it should (backpressure).
    virtual bool wantsMore() const { return true; }
    // When sync() should run next at the latest (epoch ms); 0: no deadline.
    virtual int64_t deadlineMs() const { return 0; }
    // Releases connections and temporary files; open() may be called again.
    virtual void close() = 0;
};

}  // namespace sluice::exports
