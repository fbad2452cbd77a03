// Reads the exporter files (one JSON object per file in pipeline.exporters) into ExporterSpecs and
// checks them against the pipeline they export from, with messages "<file>: <field>: <problem>".
// docs/exporters.md documents every field.
#include "config/exporter_loader.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "config/json_files.h"
#include "core/time_format.h"

namespace sluice::config {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

bool validExporterName(const std::string& name)
{
    if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z')
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

// Kafka topic names: 1..249 of [a-zA-Z0-9._-], not "." or "..".
bool validTopic(const std::string& topic)
{
    if (topic.empty() || topic.size() > 249 || topic == "." || topic == "..")
        return false;
    return std::all_of(topic.begin(), topic.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    });
}

// librdkafka properties whose values are secrets: they must come from secret_files.
bool isSecretProperty(const std::string& name)
{
    return name == "sasl.password" || name == "ssl.key.password" || name == "ssl.key.pem" ||
           name == "ssl.keystore.password" || name == "sasl.oauthbearer.client.secret" || name == "ssl_key";
}

class Fields {
public:
    Fields(const Json& j, const std::string& file) : j_(j), file_(file) {}

    bool has(const char* key) const { return j_.contains(key); }
    Status string(const char* key, std::string& out) const
    {
        if (!has(key))
            return Status::ok();
        if (!j_[key].is_string() || j_[key].get<std::string>().empty())
            return fileError(file_, key, "must be a non-empty string");
        out = j_[key].get<std::string>();
        return Status::ok();
    }
    Status boolean(const char* key, bool& out) const
    {
        if (!has(key))
            return Status::ok();
        if (!j_[key].is_boolean())
            return fileError(file_, key, "must be true or false");
        out = j_[key].get<bool>();
        return Status::ok();
    }
    Status integer(const char* key, int64_t& out, int64_t min, int64_t max) const
    {
        if (!has(key))
            return Status::ok();
        if (!j_[key].is_number_integer() || j_[key].get<int64_t>() < min || j_[key].get<int64_t>() > max)
            return fileError(file_, key, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
        out = j_[key].get<int64_t>();
        return Status::ok();
    }
    Status names(const char* key, std::vector<std::string>& out) const
    {
        if (!has(key))
            return Status::ok();
        if (!j_[key].is_array())
            return fileError(file_, key, "must be a list of names");
        for (size_t i = 0; i < j_[key].size(); ++i) {
            const Json& v = j_[key][i];
            if (!v.is_string())
                return fileError(file_, std::string(key) + "[" + std::to_string(i) + "]", "must be a string");
            out.push_back(v.get<std::string>());
        }
        return Status::ok();
    }
    Status stringMap(const char* key, std::vector<std::pair<std::string, std::string>>& out) const
    {
        if (!has(key))
            return Status::ok();
        if (!j_[key].is_object())
            return fileError(file_, key, "must be an object of strings");
        for (const auto& item : j_[key].items()) {
            if (!item.value().is_string())
                return fileError(file_, std::string(key) + "." + item.key(), "must be a string");
            out.emplace_back(item.key(), item.value().get<std::string>());
        }
        return Status::ok();
    }

private:
    const Json& j_;
    const std::string& file_;
};

Status onlyExporterKeys(const Json& j, const std::vector<const char*>& allowed, const std::string& file, const char* type)
{
    for (const auto& item : j.items()) {
        if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return item.key() == a; }))
            return fileError(file, item.key(), std::string("unknown key for a ") + type + " exporter");
    }
    return Status::ok();
}

std::string defaultTopic(const ExportSourceSpec& source, const PipelineSpec& pipeline)
{
    if (source.kind == ExportSourceSpec::Kind::kContract)
        return "sluice." + pipeline.findContract(source.name)->ident();
    return "sluice." + source.name;
}

// A secret file named in secret_files: an absolute path, or a systemd credential name looked up
// in $CREDENTIALS_DIRECTORY.
Result<std::string> secretPath(const std::string& value)
{
    if (!value.empty() && value[0] == '/')
        return value;
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir)
        return Status::invalid("'" + value + "' is not an absolute path and $CREDENTIALS_DIRECTORY is not set");
    if (value.find('/') != std::string::npos)
        return Status::invalid("'" + value + "' is neither an absolute path nor a credential name");
    return std::string(dir) + "/" + value;
}

Result<ExporterSpec> parseExporter(const std::string& text, const std::string& file, const PipelineConfig& config,
                                   const PipelineSpec& pipeline)
{
    auto parsed = parseJsonText(text, file);
    if (!parsed)
        return parsed.status();
    Json j = std::move(*parsed);
    if (!j.is_object())
        return fileError(file, "", "an exporter must be a JSON object");
    ExporterSpec e;
    e.path = file;
    e.definition = j.dump();
    Fields f(j, file);
    if (!j.contains("name") || !j["name"].is_string() || !validExporterName(j["name"].get<std::string>()))
        return fileError(file, "name", "is required: 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter");
    e.name = j["name"].get<std::string>();
    std::string type;
    SLUICE_RETURN_IF_ERROR(f.string("type", type));
    std::vector<const char*> allowed = {"name", "type", "description", "contracts", "outputs", "aggregations", "keys",
                                        "start"};
    if (type == "file") {
        e.type = ExporterType::kFile;
        allowed.insert(allowed.end(), {"directory", "compression", "zstd_level", "interval", "batches"});
    } else if (type == "stream") {
        e.type = ExporterType::kStream;
        allowed.insert(allowed.end(), {"endpoint", "send_hwm", "topics"});
    } else if (type == "kafka") {
        e.type = ExporterType::kKafka;
        allowed.insert(allowed.end(), {"topics", "keys_topic", "properties", "secret_files"});
#ifndef SLUICE_HAVE_KAFKA
        return fileError(file, "type", "kafka: this sluice was built without Kafka support (meson -Dkafka=enabled, with "
                                 "librdkafka-dev installed)");
#endif
    } else {
        return fileError(file, "type", "is required: file, stream or kafka");
    }
    SLUICE_RETURN_IF_ERROR(onlyExporterKeys(j, allowed, file, type.c_str()));

    std::vector<std::string> contracts, outputs, aggregations;
    SLUICE_RETURN_IF_ERROR(f.names("contracts", contracts));
    SLUICE_RETURN_IF_ERROR(f.names("outputs", outputs));
    SLUICE_RETURN_IF_ERROR(f.names("aggregations", aggregations));
    SLUICE_RETURN_IF_ERROR(f.boolean("keys", e.keys));
    std::set<std::string> seen;
    for (const std::string& ref : contracts) {
        if (!pipeline.findContract(ref))
            return fileError(file, "contracts", "no contract '" + ref + "' is loaded");
        if (!seen.insert("c:" + ref).second)
            return fileError(file, "contracts", "'" + ref + "' is listed twice");
        e.sources.push_back({ExportSourceSpec::Kind::kContract, ref, ""});
    }
    for (const std::string& name : outputs) {
        if (std::none_of(pipeline.outputs.begin(), pipeline.outputs.end(),
                         [&](const OutputSpec& o) { return o.name == name; }))
            return fileError(file, "outputs", "no derived output '" + name + "' is configured");
        if (!seen.insert("o:" + name).second)
            return fileError(file, "outputs", "'" + name + "' is listed twice");
        e.sources.push_back({ExportSourceSpec::Kind::kOutput, name, ""});
    }
    for (const std::string& name : aggregations) {
        if (std::none_of(pipeline.aggregations.begin(), pipeline.aggregations.end(),
                         [&](const AggregationSpec& a) { return a.name == name; }))
            return fileError(file, "aggregations", "no aggregation '" + name + "' is configured");
        if (!seen.insert("a:" + name).second)
            return fileError(file, "aggregations", "'" + name + "' is listed twice");
        e.sources.push_back({ExportSourceSpec::Kind::kAggregation, name, ""});
    }
    if (e.sources.empty() && !e.keys)
        return fileError(file, "", "exports nothing: list contracts, outputs or aggregations, or set keys");
    for (ExportSourceSpec& s : e.sources)
        s.topic = defaultTopic(s, pipeline);

    std::string start = "beginning";
    SLUICE_RETURN_IF_ERROR(f.string("start", start));
    if (start != "beginning" && start != "end")
        return fileError(file, "start", "must be \"beginning\" (every committed batch) or \"end\" (from now on)");
    e.startAtEnd = start == "end";

    if (e.type == ExporterType::kFile) {
        if (!f.has("directory"))
            return fileError(file, "directory", "is required: where the files go (relative to the state directory)");
        SLUICE_RETURN_IF_ERROR(f.string("directory", e.directory));
        fs::path dir(e.directory);
        if (dir.is_relative())
            dir = fs::path(config.stateDir) / dir;
        e.directory = dir.lexically_normal().string();
        std::string compression = "none";
        SLUICE_RETURN_IF_ERROR(f.string("compression", compression));
        if (compression != "none" && compression != "zstd")
            return fileError(file, "compression", "must be \"none\" or \"zstd\"");
        e.zstd = compression == "zstd";
        int64_t level = e.zstdLevel;
        SLUICE_RETURN_IF_ERROR(f.integer("zstd_level", level, 1, 19));
        e.zstdLevel = static_cast<int>(level);
        if (f.has("interval")) {
            auto ms = j["interval"].is_string() ? parseDurationMs(j["interval"].get<std::string>()) : std::nullopt;
            if (!ms || *ms < 100 || *ms > 86'400'000)
                return fileError(file, "interval", "must be a duration from 100ms to 1d, like \"60s\"");
            e.intervalMs = *ms;
        }
        int64_t batches = 0;
        SLUICE_RETURN_IF_ERROR(f.integer("batches", batches, 0, 1'000'000));
        e.everyBatches = static_cast<uint64_t>(batches);
    }
    if (e.type == ExporterType::kStream) {
        if (!f.has("endpoint"))
            return fileError(file, "endpoint", "is required: where the PUB socket binds, e.g. tcp://127.0.0.1:7410");
        SLUICE_RETURN_IF_ERROR(f.string("endpoint", e.endpoint));
        if (e.endpoint.rfind("tcp://", 0) != 0 && e.endpoint.rfind("ipc://", 0) != 0 &&
            e.endpoint.rfind("inproc://", 0) != 0)
            return fileError(file, "endpoint", "'" + e.endpoint + "' is not a tcp://, ipc:// or inproc:// endpoint");
        int64_t hwm = e.sendHwm;
        SLUICE_RETURN_IF_ERROR(f.integer("send_hwm", hwm, 1, 10'000'000));
        e.sendHwm = static_cast<int>(hwm);
    }
    if (e.type == ExporterType::kStream || e.type == ExporterType::kKafka) {
        std::vector<std::pair<std::string, std::string>> topics;
        SLUICE_RETURN_IF_ERROR(f.stringMap("topics", topics));
        for (const auto& [source, topic] : topics) {
            auto it = std::find_if(e.sources.begin(), e.sources.end(),
                                   [&](const ExportSourceSpec& s) { return s.name == source; });
            if (it == e.sources.end())
                return fileError(file, "topics." + source, "names no exported contract, output or aggregation");
            if (e.type == ExporterType::kKafka && !validTopic(topic))
                return fileError(file, "topics." + source, "'" + topic + "' is not a Kafka topic name");
            if (topic.empty())
                return fileError(file, "topics." + source, "must not be empty");
            it->topic = topic;
        }
    }
    if (e.type == ExporterType::kKafka) {
        SLUICE_RETURN_IF_ERROR(f.string("keys_topic", e.keysTopic));
        if (!validTopic(e.keysTopic))
            return fileError(file, "keys_topic", "'" + e.keysTopic + "' is not a Kafka topic name");
        SLUICE_RETURN_IF_ERROR(f.stringMap("properties", e.kafkaProperties));
        bool bootstrap = false;
        for (const auto& [name, value] : e.kafkaProperties) {
            if (isSecretProperty(name))
                return fileError(file, "properties." + name, "is a secret: give it in secret_files (a file or a credential)");
            bootstrap |= name == "bootstrap.servers" || name == "metadata.broker.list";
        }
        if (!bootstrap)
            return fileError(file, "properties", "needs bootstrap.servers");
        std::vector<std::pair<std::string, std::string>> secrets;
        SLUICE_RETURN_IF_ERROR(f.stringMap("secret_files", secrets));
        for (auto& [name, value] : secrets) {
            auto path = secretPath(value);
            if (!path)
                return fileError(file, "secret_files." + name, path.status().message());
            std::ifstream in(*path);
            if (!in)
                return fileError(file, "secret_files." + name, *path + " cannot be read");
            e.kafkaSecretFiles.emplace_back(name, *path);
        }
        std::set<std::string> topics;
        for (const ExportSourceSpec& s : e.sources)
            if (!topics.insert(s.topic).second)
                return fileError(file, "topics", "two sources go to topic '" + s.topic + "'");
        if (e.keys && topics.count(e.keysTopic))
            return fileError(file, "keys_topic", "'" + e.keysTopic + "' is also a source's topic");
    }
    return e;
}

}  // namespace

Status loadExporters(const PipelineConfig& config, PipelineSpec& pipeline)
{
    if (config.exportersDir.empty())
        return Status::ok();
    auto files = readJsonFiles(config.exportersDir, "exporters");
    if (!files)
        return files.status();
    for (const auto& [path, text] : *files) {
        auto e = parseExporter(text, path, config, pipeline);
        if (!e)
            return e.status();
        for (const ExporterSpec& other : pipeline.exporters) {
            if (other.name == e->name)
                return fileError(path, "name", "exporter '" + e->name + "' is already defined in " + other.path);
            if (e->type == ExporterType::kStream && other.type == ExporterType::kStream && other.endpoint == e->endpoint)
                return fileError(path, "endpoint", e->endpoint + " is already the endpoint of exporter '" + other.name + "'");
            if (e->type == ExporterType::kFile && other.type == ExporterType::kFile && other.directory == e->directory)
                return fileError(path, "directory", e->directory + " is already the directory of exporter '" + other.name +
                                                  "'");
        }
        pipeline.exporters.push_back(std::move(*e));
    }
    return Status::ok();
}

}  // namespace sluice::config
