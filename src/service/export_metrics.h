// The exporters' counters in the daemon's Prometheus registry, labelled by exporter, brought up
// to date before each scrape (sync()). An exporter removed by a reload keeps its last values.
#pragma once

#include <map>
#include <string>

#include "export/export_set.h"
#include "service/metrics.h"

namespace sluice::service {

class ExportMetrics {
public:
    ExportMetrics(Registry& registry, const exports::ExportSet& exporters)
        : registry_(registry), exporters_(exporters)
    {
    }
    // Main thread (the scrape).
    void sync();

private:
    struct Series {
        Counter* records = nullptr;
        Counter* bytes = nullptr;
        Counter* errors = nullptr;
        Counter* retries = nullptr;
        Counter* tombstones = nullptr;
        Counter* read = nullptr;
        Counter* yielded = nullptr;
        Gauge* lagBatches = nullptr;
        Gauge* lagSeconds = nullptr;
        Gauge* up = nullptr;
        Gauge* refused = nullptr;
        Gauge* batch = nullptr;
        uint64_t seenRecords = 0, seenBytes = 0, seenErrors = 0, seenRetries = 0, seenTombstones = 0, seenRead = 0, seenYielded = 0;
    };
    Registry& registry_;
    const exports::ExportSet& exporters_;
    std::map<std::string, Series> series_;
};

}  // namespace sluice::service
