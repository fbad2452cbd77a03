#include "service/export_metrics.h"

namespace sluice::service {
namespace {

// Counters only go up; a restarted exporter's counts start again from zero.
void advance(Counter& c, uint64_t now, uint64_t& seen)
{
    if (now >= seen)
        c.inc(now - seen);
    else
        c.inc(now);
    seen = now;
}

}  // namespace

void ExportMetrics::sync()
{
    exporters_.forEach([&](const ExporterSpec& spec, const exports::ExporterStats& stats) {
        auto [it, added] = series_.try_emplace(spec.name);
        Series& s = it->second;
        if (added) {
            const Labels l = {{"exporter", spec.name}, {"type", std::string(exporterTypeName(spec.type))}};
            s.records = &registry_.counter("sluice_export_records_total", "Records handed to the exporter's sink.", l);
            s.bytes = &registry_.counter("sluice_export_bytes_total", "Bytes of records handed to the sink.", l);
            s.errors = &registry_.counter("sluice_export_errors_total", "Sink failures (each one closes and retries the sink).", l);
            s.retries = &registry_.counter("sluice_export_retries_total", "Failed retries while the sink was down.", l);
            s.tombstones = &registry_.counter("sluice_export_shredded_key_links_total",
                                              "Shredded key links carried downstream (forget logs, tombstones).", l);
            s.read = &registry_.counter("sluice_export_read_records_total",
                                        "Records the exporter read and encoded itself (the others came from the "
                                        "exporter that read the batch first).", l);
            s.yielded = &registry_.counter("sluice_export_yielded_microseconds_total",
                                           "Time the exporter slept to give way to a saturated pipeline "
                                           "(service.exporter_busy_percent).", l);
            s.lagBatches = &registry_.gauge("sluice_export_lag_batches", "Committed batches not yet durable in the sink.", l);
            s.lagSeconds = &registry_.gauge("sluice_export_lag_seconds",
                                            "Age of the oldest committed batch not yet durable in the sink.", l);
            s.up = &registry_.gauge("sluice_export_up", "1 while the sink is open and working.", l);
            s.refused = &registry_.gauge("sluice_export_refused",
                                         "1 when the exporter stopped on a fault retrying cannot fix (a Kafka topic's "
                                         "partition count changed).", l);
            s.batch = &registry_.gauge("sluice_export_batch", "Last batch durable in the sink (the cursor).", l);
        }
        advance(*s.records, stats.records.load(), s.seenRecords);
        advance(*s.bytes, stats.bytes.load(), s.seenBytes);
        advance(*s.errors, stats.errors.load(), s.seenErrors);
        advance(*s.retries, stats.retries.load(), s.seenRetries);
        advance(*s.tombstones, stats.tombstones.load(), s.seenTombstones);
        advance(*s.read, stats.readRecords.load(), s.seenRead);
        advance(*s.yielded, stats.yieldedUs.load(), s.seenYielded);
        s.lagBatches->set(static_cast<double>(stats.lagBatches.load()));
        s.lagSeconds->set(stats.lagSeconds.load());
        s.up->set(stats.up.load() ? 1.0 : 0.0);
        s.refused->set(stats.refused.load() ? 1.0 : 0.0);
        s.batch->set(static_cast<double>(stats.exportedBatch.load()));
    });
}

}  // namespace sluice::service
