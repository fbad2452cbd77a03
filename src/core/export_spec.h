// What an exporter sends out of the host after commit, as configured (one JSON file per exporter
// in the exporters directory; docs/exporters.md). config/ builds and checks these; export/ runs
// them. Plain values: an exporter whose spec is unchanged across a reload keeps running.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

enum class ExporterType : uint8_t { kFile, kStream, kKafka };

// One stream of records: a contract's stored events (PII encrypted, as stored), a derived
// output's rows (consented plaintext and masks), or an aggregation's final windows.
struct ExportSourceSpec {
    enum class Kind : uint8_t { kContract, kOutput, kAggregation };
    Kind kind = Kind::kContract;
    std::string name;   // contract ref, output name or aggregation name
    std::string topic;  // stream topic / Kafka topic; files use it in the record's "source"
};

struct ExporterSpec {
    std::string name;
    ExporterType type = ExporterType::kFile;
    std::string path;        // the file it came from, for messages
    std::string definition;  // the file's JSON, compact: a changed definition restarts the exporter
    std::vector<ExportSourceSpec> sources;
    bool keys = false;        // data keys in clear (Tink keysets): off by default
    bool startAtEnd = false;  // a new exporter starts after the last committed batch

    // file
    std::string directory;    // absolute
    bool zstd = false;
    int zstdLevel = 1;        // events are mostly ciphertext: higher levels gain ~2% for 2-3x the CPU
    int64_t intervalMs = 60'000;
    uint64_t everyBatches = 0;  // > 0: a file per this many batches instead of per interval

    // stream
    std::string endpoint;
    int sendHwm = 100'000;

    // kafka
    std::vector<std::pair<std::string, std::string>> kafkaProperties;
    std::vector<std::pair<std::string, std::string>> kafkaSecretFiles;  // property -> file (absolute)
    std::string keysTopic = "sluice.keys";
};

std::string_view exporterTypeName(ExporterType type);

}  // namespace sluice
