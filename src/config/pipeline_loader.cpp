// Reads contract and pipeline JSON files into a PipelineSpec and checks them, with messages of
// the form "<file>: <json path>: <problem>".
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "aggregate/aggregation_table.h"
#include "aggregate/subject_set.h"
#include "config/builtin.h"
#include "config/config.h"
#include "config/exporter_loader.h"
#include "config/json_files.h"
#include "config/pipeline_parts.h"
#include "contract/pattern.h"
#include "core/time_format.h"

namespace sluice::config {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

Status onlyKeys(const Json& object, std::initializer_list<const char*> allowed, const std::string& file,
                const std::string& where)
{
    for (const auto& item : object.items()) {
        const std::string& key = item.key();
        if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }))
            return fileError(file, where.empty() ? key : where + "." + key, "unknown key");
    }
    return Status::ok();
}

// The same engine as contract patterns (PCRE2); std::regex is slow and its headers trip
// compiler warnings in sanitizer builds.
bool fullMatch(const char* pattern, const std::string& text)
{
    auto compiled = contract::Pattern::compile(pattern);
    if (!compiled)
        return false;
    contract::PatternMatcher matcher;
    return matcher.match(**compiled, text) == contract::MatchResult::kMatch;
}

bool validRef(const std::string& ref)
{
    return fullMatch("^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*/[0-9]+\\.[0-9]+\\.[0-9]+([-+][A-Za-z0-9_.-]+)?$",
                     ref);
}

bool validName(const std::string& name)
{
    return fullMatch("^[a-z][a-z0-9_]{0,62}$", name);
}

bool isInteger(const Json& j) { return j.is_number_integer(); }

Result<FieldType> parseType(const std::string& text)
{
    if (text == "string")
        return FieldType::kString;
    if (text == "integer")
        return FieldType::kInteger;
    if (text == "number")
        return FieldType::kNumber;
    if (text == "boolean")
        return FieldType::kBoolean;
    return Status::invalid("unknown type '" + text + "' (string, integer, number, boolean or array)");
}

Result<FieldSpec> parseField(const std::string& name, const Json& j, const std::string& file)
{
    const std::string where = "fields." + name;
    FieldSpec f;
    f.name = name;
    if (!j.is_object())
        return fileError(file, where, "must be an object");
    SLUICE_RETURN_IF_ERROR(onlyKeys(j, {"type", "items", "required", "pii", "pattern", "max_length", "description"},
                                    file, where));
    if (name.empty() || name.size() > 128)
        return fileError(file, where, "field names must be 1 to 128 bytes");
    if (name == "meta")
        return fileError(file, where, "'meta' is reserved for event metadata");
    if (isReservedColumn(name))
        return fileError(file, where, "'" + name + "' is reserved (it names a metadata column of the events table)");
    if (!j.contains("type") || !j["type"].is_string())
        return fileError(file, where + ".type", "is required and must be a string");
    std::string type = j["type"].get<std::string>();
    if (type == "array") {
        f.array = true;
        if (!j.contains("items"))
            return fileError(file, where + ".items", "is required for an array");
        const Json& items = j["items"];
        std::string itemType;
        if (items.is_string())
            itemType = items.get<std::string>();
        else if (items.is_object() && items.contains("type") && items["type"].is_string() && items.size() == 1)
            itemType = items["type"].get<std::string>();
        else
            return fileError(file, where + ".items", "must be a type name or {\"type\": name}");
        auto t = parseType(itemType);
        if (!t || itemType == "array")
            return fileError(file, where + ".items", itemType == "array" ? "arrays of arrays are not supported" : t.status().message());
        f.type = *t;
    } else {
        if (j.contains("items"))
            return fileError(file, where + ".items", "only arrays have items");
        auto t = parseType(type);
        if (!t)
            return fileError(file, where + ".type", t.status().message());
        f.type = *t;
    }
    if (j.contains("required")) {
        if (!j["required"].is_boolean())
            return fileError(file, where + ".required", "must be true or false");
        f.required = j["required"].get<bool>();
    }
    if (j.contains("pii")) {
        const Json& p = j["pii"];
        if (!isInteger(p) || p.get<int64_t>() < 0 || p.get<int64_t>() > kMaxPurposeLevel)
            return fileError(file, where + ".pii", "must be a purpose level from 0 to " + std::to_string(kMaxPurposeLevel));
        f.pii = p.get<int>();
        if (f.type != FieldType::kString)
            return fileError(file, where + ".pii", "a PII field must be a string or an array of strings");
    }
    if (j.contains("pattern")) {
        if (!j["pattern"].is_string())
            return fileError(file, where + ".pattern", "must be a string");
        if (f.type != FieldType::kString)
            return fileError(file, where + ".pattern", "only strings can have a pattern");
        f.pattern = j["pattern"].get<std::string>();
        auto compiled = contract::Pattern::compile(f.pattern);
        if (!compiled)
            return fileError(file, where + ".pattern", compiled.status().message());
    }
    if (j.contains("max_length")) {
        const Json& m = j["max_length"];
        if (!isInteger(m) || m.get<int64_t>() < 1 || m.get<int64_t>() > (1 << 30))
            return fileError(file, where + ".max_length", "must be a positive integer (bytes)");
        if (f.type != FieldType::kString)
            return fileError(file, where + ".max_length", "only strings have a length");
        f.maxLength = m.get<uint32_t>();
    }
    return f;
}

}  // namespace

Result<ContractSpec> parseContract(const std::string& text, const std::string& file)
{
    auto parsed = parseJsonText(text, file);
    if (!parsed)
        return parsed.status();
    const Json& j = *parsed;
    if (!j.is_object())
        return fileError(file, "", "a contract must be a JSON object");
    SLUICE_RETURN_IF_ERROR(onlyKeys(j, {"ref", "key_field", "data_subject_field", "retention_days", "fields", "description"},
                                    file, ""));
    ContractSpec c;
    c.path = file;
    c.definition = j.dump();
    if (!j.contains("ref") || !j["ref"].is_string())
        return fileError(file, "ref", "is required and must be a string like handle/name/1.0.0");
    c.ref = j["ref"].get<std::string>();
    if (c.ref.size() > 200 || !validRef(c.ref))
        return fileError(file, "ref", "'" + c.ref + "' is not of the form handle/name/major.minor.patch");
    if (!j.contains("fields") || !j["fields"].is_object() || j["fields"].empty())
        return fileError(file, "fields", "is required and must be a non-empty object");
    for (const auto& [name, value] : j["fields"].items()) {
        auto f = parseField(name, value, file);
        if (!f)
            return f.status();
        c.fields.push_back(std::move(*f));
    }
    if (!j.contains("key_field") || !j["key_field"].is_string())
        return fileError(file, "key_field", "is required and must name a field");
    c.keyField = j["key_field"].get<std::string>();
    c.keyFieldIndex = c.fieldIndex(c.keyField);
    if (c.keyFieldIndex < 0)
        return fileError(file, "key_field", "'" + c.keyField + "' is not a field of the contract");
    const FieldSpec& key = c.fields[static_cast<size_t>(c.keyFieldIndex)];
    if (key.type != FieldType::kString || key.array || !key.required)
        return fileError(file, "key_field", "'" + c.keyField + "' must be a required string field (every event needs a key)");
    if (j.contains("data_subject_field")) {
        if (!j["data_subject_field"].is_string())
            return fileError(file, "data_subject_field", "must name a field");
        c.subjectField = j["data_subject_field"].get<std::string>();
        c.subjectFieldIndex = c.fieldIndex(c.subjectField);
        if (c.subjectFieldIndex < 0)
            return fileError(file, "data_subject_field", "'" + c.subjectField + "' is not a field of the contract");
        const FieldSpec& s = c.fields[static_cast<size_t>(c.subjectFieldIndex)];
        if (s.type != FieldType::kString || s.array)
            return fileError(file, "data_subject_field", "'" + c.subjectField + "' must be a string field");
    }
    if (j.contains("retention_days")) {
        const Json& r = j["retention_days"];
        if (!isInteger(r) || r.get<int64_t>() < 0 || r.get<int64_t>() > 36500)
            return fileError(file, "retention_days", "must be an integer from 0 (keep) to 36500");
        c.retentionDays = r.get<int>();
    }
    return c;
}

namespace {

Result<std::vector<int>> parseLevels(const Json& j, const std::string& file, const std::string& where)
{
    if (!j.is_array())
        return fileError(file, where, "must be an array of purpose levels");
    std::vector<int> levels;
    for (const Json& level : j) {
        if (!isInteger(level) || level.get<int64_t>() < 0 || level.get<int64_t>() > kMaxPurposeLevel)
            return fileError(file, where, "purpose levels are integers from 0 to " + std::to_string(kMaxPurposeLevel));
        int v = level.get<int>();
        if (std::find(levels.begin(), levels.end(), v) != levels.end())
            return fileError(file, where, "level " + std::to_string(v) + " is listed twice");
        levels.push_back(v);
    }
    return levels;
}

Result<int64_t> parseDurationField(const Json& j, const std::string& file, const std::string& where)
{
    if (j.is_string()) {
        auto ms = parseDurationMs(j.get<std::string>());
        if (ms)
            return *ms;
    } else if (isInteger(j) && j.get<int64_t>() >= 0) {
        return j.get<int64_t>();
    }
    return fileError(file, where, "must be a duration such as \"500ms\", \"30s\", \"1m\", \"1h\" or \"1d\"");
}

}  // namespace

Result<OutputSpec> parseOutput(const Json& j, const std::string& contract, const std::string& file,
                               const std::string& where, const fs::path& baseDir)
{
    if (!j.is_object())
        return fileError(file, where, "must be an object");
    SLUICE_RETURN_IF_ERROR(onlyKeys(j, {"name", "type", "purposes", "mask", "description"}, file, where));
    OutputSpec o;
    o.contract = contract;
    o.path = file;
    if (!j.contains("name") || !j["name"].is_string())
        return fileError(file, where + ".name", "is required");
    o.name = j["name"].get<std::string>();
    if (j.contains("type")) {
        if (!j["type"].is_string())
            return fileError(file, where + ".type", "must be \"granular\" or \"cumulative\"");
        std::string type = j["type"].get<std::string>();
        if (type == "granular")
            o.type = OutputType::kGranular;
        else if (type == "cumulative")
            o.type = OutputType::kCumulative;
        else
            return fileError(file, where + ".type", "'" + type + "' is neither \"granular\" nor \"cumulative\"");
    }
    if (!j.contains("purposes"))
        return fileError(file, where + ".purposes", "is required");
    auto levels = parseLevels(j["purposes"], file, where + ".purposes");
    if (!levels)
        return levels.status();
    o.purposes = std::move(*levels);
    if (o.purposes.empty())
        return fileError(file, where + ".purposes", "must list at least one purpose level");
    if (o.type == OutputType::kCumulative && o.purposes.size() != 1)
        return fileError(file, where + ".purposes", "a cumulative output has exactly one level");
    if (j.contains("mask")) {
        const Json& m = j["mask"];
        const std::string mw = where + ".mask";
        if (!m.is_object())
            return fileError(file, mw, "must be an object");
        SLUICE_RETURN_IF_ERROR(onlyKeys(m, {"fields", "algorithm", "seed_file"}, file, mw));
        if (!m.contains("fields") || !m["fields"].is_array())
            return fileError(file, mw + ".fields", "is required and must be an array of field names");
        for (const Json& f : m["fields"]) {
            if (!f.is_string())
                return fileError(file, mw + ".fields", "must hold field names");
            o.maskedFields.push_back(f.get<std::string>());
        }
        if (m.contains("algorithm")) {
            std::string a = m["algorithm"].is_string() ? m["algorithm"].get<std::string>() : "";
            if (a == "hmac-sha256")
                o.algorithm = MaskAlgorithm::kHmacSha256;
            else if (a == "murmur3")
                o.algorithm = MaskAlgorithm::kMurmur3;
            else
                return fileError(file, mw + ".algorithm", "must be \"hmac-sha256\" or \"murmur3\"");
        }
        if (m.contains("seed_file")) {
            if (!m["seed_file"].is_string() || m["seed_file"].get<std::string>().empty())
                return fileError(file, mw + ".seed_file", "must be a path");
            fs::path seed = m["seed_file"].get<std::string>();
            if (seed.is_relative())
                seed = baseDir / seed;
            std::error_code ec;
            if (!fs::is_regular_file(seed, ec))
                return fileError(file, mw + ".seed_file", seed.string() + " does not exist");
            o.seedFile = seed.string();
        }
    }
    return o;
}

namespace {

Result<MetricSpec> parseMetric(const std::string& text)
{
    MetricSpec m;
    if (text == "count")
        return m;
    auto open = text.find('(');
    if (open == std::string::npos || text.back() != ')' || open + 2 > text.size() - 1)
        return Status::invalid("'" + text + "' is not a metric (count, sum(f), min(f), max(f), avg(f), distinct(f))");
    std::string fn = text.substr(0, open);
    m.field = text.substr(open + 1, text.size() - open - 2);
    if (fn == "sum")
        m.kind = MetricKind::kSum;
    else if (fn == "min")
        m.kind = MetricKind::kMin;
    else if (fn == "max")
        m.kind = MetricKind::kMax;
    else if (fn == "avg")
        m.kind = MetricKind::kAvg;
    else if (fn == "distinct")
        m.kind = MetricKind::kDistinct;
    else
        return Status::invalid("unknown metric function '" + fn + "'");
    return m;
}

// "1m" (or milliseconds): a tumbling window of that size; or an object:
//   {"type": "tumbling", "size": "1m"}
//   {"type": "sliding", "size": "1h", "slide": "5m"}
//   {"type": "session", "gap": "30m"}
Status parseWindow(const Json& j, const std::string& file, const std::string& where, AggregationSpec& a)
{
    if (!j.is_object()) {
        auto size = parseDurationField(j, file, where);
        if (!size)
            return size.status();
        a.window = WindowKind::kTumbling;
        a.windowMs = *size;
        return Status::ok();
    }
    SLUICE_RETURN_IF_ERROR(onlyKeys(j, {"type", "size", "slide", "gap"}, file, where));
    if (!j.contains("type") || !j["type"].is_string())
        return fileError(file, where + ".type", "is required: \"tumbling\", \"sliding\" or \"session\"");
    const std::string type = j["type"].get<std::string>();
    auto duration = [&](const char* key, const char* example) -> Result<int64_t> {
        if (!j.contains(key))
            return fileError(file, where + "." + key, std::string("is required for a ") + type + " window (for example \"" +
                                                    example + "\")");
        return parseDurationField(j[key], file, where + "." + key);
    };
    auto refuse = [&](const char* key) -> Status {
        if (j.contains(key))
            return fileError(file, where + "." + key, "does not apply to a " + type + " window");
        return Status::ok();
    };
    if (type == "tumbling" || type == "sliding") {
        auto size = duration("size", "1h");
        if (!size)
            return size.status();
        a.windowMs = *size;
        SLUICE_RETURN_IF_ERROR(refuse("gap"));
        if (type == "tumbling") {
            SLUICE_RETURN_IF_ERROR(refuse("slide"));
            a.window = WindowKind::kTumbling;
        } else {
            auto slide = duration("slide", "5m");
            if (!slide)
                return slide.status();
            a.window = WindowKind::kSliding;
            a.slideMs = *slide;
        }
        return Status::ok();
    }
    if (type == "session") {
        SLUICE_RETURN_IF_ERROR(refuse("size"));
        SLUICE_RETURN_IF_ERROR(refuse("slide"));
        auto gap = duration("gap", "30m");
        if (!gap)
            return gap.status();
        a.window = WindowKind::kSession;
        a.gapMs = *gap;
        return Status::ok();
    }
    return fileError(file, where + ".type", "'" + type + "' is not \"tumbling\", \"sliding\" or \"session\"");
}

}  // namespace

Result<AggregationSpec> parseAggregation(const Json& j, const std::string& contract, const std::string& file,
                                         const std::string& where)
{
    if (!j.is_object())
        return fileError(file, where, "must be an object");
    SLUICE_RETURN_IF_ERROR(onlyKeys(j,
                                    {"name", "window", "group_by", "metrics", "consent", "allowed_lateness",
                                     "min_group_size", "description"},
                                    file, where));
    AggregationSpec a;
    a.contract = contract;
    a.path = file;
    if (!j.contains("name") || !j["name"].is_string())
        return fileError(file, where + ".name", "is required");
    a.name = j["name"].get<std::string>();
    if (!j.contains("window"))
        return fileError(file, where + ".window", "is required (for example \"1m\")");
    SLUICE_RETURN_IF_ERROR(parseWindow(j["window"], file, where + ".window", a));
    if (j.contains("group_by")) {
        if (!j["group_by"].is_array())
            return fileError(file, where + ".group_by", "must be an array of field names");
        for (const Json& g : j["group_by"]) {
            if (!g.is_string())
                return fileError(file, where + ".group_by", "must hold field names");
            a.groupBy.push_back(g.get<std::string>());
        }
    }
    if (!j.contains("metrics") || !j["metrics"].is_array() || j["metrics"].empty())
        return fileError(file, where + ".metrics", "is required: a list such as [\"count\", \"sum(total)\"]");
    for (const Json& m : j["metrics"]) {
        if (!m.is_string())
            return fileError(file, where + ".metrics", "must hold strings such as \"sum(total)\"");
        auto metric = parseMetric(m.get<std::string>());
        if (!metric)
            return fileError(file, where + ".metrics", metric.status().message());
        a.metrics.push_back(std::move(*metric));
    }
    if (j.contains("consent")) {
        auto levels = parseLevels(j["consent"], file, where + ".consent");
        if (!levels)
            return levels.status();
        a.consent = std::move(*levels);
    }
    // How long windows wait for out-of-order events decides what counts as late: no default.
    if (!j.contains("allowed_lateness"))
        return fileError(file, where + ".allowed_lateness",
                   "is required: how long a window waits for out-of-order events (for example \"30s\"; \"0s\" "
                   "makes every event behind the largest event time seen late for windows that ended)");
    auto lateness = parseDurationField(j["allowed_lateness"], file, where + ".allowed_lateness");
    if (!lateness)
        return lateness.status();
    a.allowedLatenessMs = *lateness;
    a.minGroupSize = kDefaultMinGroupSize;
    if (j.contains("min_group_size")) {
        const Json& k = j["min_group_size"];
        const auto limit = static_cast<int64_t>(aggregate::SubjectSet::kExactLimit);
        if (!isInteger(k) || k.get<int64_t>() < 1 || k.get<int64_t>() > limit)
            return fileError(file, where + ".min_group_size",
                       "must be an integer from 1 to " + std::to_string(limit) + " (distinct data subjects; default " +
                           std::to_string(kDefaultMinGroupSize) + ")");
        a.minGroupSize = k.get<int>();
    }
    return a;
}

namespace {

Status parsePipeline(const std::string& text, const std::string& file, const fs::path& baseDir, PipelineSpec& out)
{
    auto parsed = parseJsonText(text, file);
    if (!parsed)
        return parsed.status();
    const Json& j = *parsed;
    if (!j.is_object())
        return fileError(file, "", "a pipeline must be a JSON object");
    SLUICE_RETURN_IF_ERROR(onlyKeys(j, {"contract", "outputs", "aggregations", "description"}, file, ""));
    if (!j.contains("contract") || !j["contract"].is_string())
        return fileError(file, "contract", "is required: the ref of the contract this pipeline reads");
    std::string contract = j["contract"].get<std::string>();
    if (!out.findContract(contract))
        return fileError(file, "contract", "no contract '" + contract + "' is loaded");
    if (j.contains("outputs")) {
        if (!j["outputs"].is_array())
            return fileError(file, "outputs", "must be an array");
        for (size_t i = 0; i < j["outputs"].size(); ++i) {
            auto o = parseOutput(j["outputs"][i], contract, file, "outputs[" + std::to_string(i) + "]", baseDir);
            if (!o)
                return o.status();
            out.outputs.push_back(std::move(*o));
        }
    }
    if (j.contains("aggregations")) {
        if (!j["aggregations"].is_array())
            return fileError(file, "aggregations", "must be an array");
        for (size_t i = 0; i < j["aggregations"].size(); ++i) {
            auto a = parseAggregation(j["aggregations"][i], contract, file, "aggregations[" + std::to_string(i) + "]");
            if (!a)
                return a.status();
            out.aggregations.push_back(std::move(*a));
        }
    }
    return Status::ok();
}

// Names become SQL tables and views: they must be distinct from each other and from ours.
Status checkNames(const PipelineSpec& p)
{
    static const std::set<std::string> kBuiltin = {
        // Every table and view of store/schema.cpp, and "meta".
        "aggregations", "batch_log", "batches", "contracts", "dead_letters", "export_cursors",
        "key_subjects", "keys", "late_events", "late_windows", "meta", "outputs", "producer_marks", "producers",
        "rejects", "session_snapshot_rows", "session_snapshots", "shred_log", "sluice_meta", "sluice_tables",
        "watermarks",
    };
    std::set<std::string> taken;
    for (const ContractSpec& c : p.contracts) {
        if (!taken.insert(c.viewName()).second)
            return fileError(c.path, "ref", "contract refs '" + c.ref + "' and another map to the same SQL name " + c.viewName());
    }
    auto claim = [&](const std::string& name, const std::string& path, const std::string& what) {
        if (!validName(name))
            return fileError(path, what, "'" + name + "' must be lowercase letters, digits and _ (starting with a letter)");
        for (const char* prefix : {"events_", "derived_", "agg_", "sqlite_"})
            if (name.rfind(prefix, 0) == 0)
                return fileError(path, what, "'" + name + "' may not start with " + prefix);
        if (kBuiltin.count(name))
            return fileError(path, what, "'" + name + "' is the name of a built-in table");
        if (!taken.insert(name).second)
            return fileError(path, what, "the name '" + name + "' is used twice (outputs, aggregations and contract views share one namespace)");
        return Status::ok();
    };
    for (const OutputSpec& o : p.outputs)
        SLUICE_RETURN_IF_ERROR(claim(o.name, o.path, "outputs." + o.name));
    for (const AggregationSpec& a : p.aggregations)
        SLUICE_RETURN_IF_ERROR(claim(a.name, a.path, "aggregations." + a.name));
    return Status::ok();
}

Status checkOutputs(const PipelineSpec& p)
{
    for (const OutputSpec& o : p.outputs) {
        const ContractSpec* c = p.findContract(o.contract);
        for (const std::string& f : o.maskedFields) {
            if (c->fieldIndex(f) < 0)
                return fileError(o.path, "outputs." + o.name + ".mask.fields", "'" + f + "' is not a field of " + c->ref);
        }
    }
    return Status::ok();
}

}  // namespace

Status checkPipeline(const PipelineSpec& pipeline)
{
    SLUICE_RETURN_IF_ERROR(checkNames(pipeline));
    SLUICE_RETURN_IF_ERROR(checkOutputs(pipeline));
    for (const AggregationSpec& a : pipeline.aggregations) {
        Status s = aggregate::checkAggregation(a, *pipeline.findContract(a.contract));
        if (!s)
            return s;  // the message already starts with a.path
    }
    return Status::ok();
}

Result<PipelinePtr> loadPipeline(const PipelineConfig& config)
{
    auto spec = std::make_shared<PipelineSpec>();
    std::vector<std::pair<std::string, std::string>> contractFiles;
    if (config.contractsDir == kBuiltinSource) {
        contractFiles.emplace_back("builtin:acme-checkout.json", kBuiltinContract);
    } else {
        auto files = readJsonFiles(config.contractsDir, "contracts");
        if (!files)
            return files.status();
        contractFiles = std::move(*files);
    }
    for (const auto& [path, text] : contractFiles) {
        auto c = parseContract(text, path);
        if (!c)
            return c.status();
        if (const ContractSpec* other = spec->findContract(c->ref))
            return fileError(path, "ref", "contract " + c->ref + " is already defined in " + other->path);
        spec->contracts.push_back(std::move(*c));
    }
    if (spec->contracts.empty())
        return Status::invalid("no contracts: " + config.contractsDir + " holds no *.json files");

    std::vector<std::pair<std::string, std::string>> pipelineFiles;
    fs::path baseDir;
    if (config.pipelinesDir == kBuiltinSource) {
        pipelineFiles.emplace_back("builtin:acme-checkout-pipeline.json", kBuiltinPipeline);
    } else if (!config.pipelinesDir.empty()) {
        auto files = readJsonFiles(config.pipelinesDir, "pipelines");
        if (!files)
            return files.status();
        pipelineFiles = std::move(*files);
        baseDir = config.pipelinesDir;
    }
    for (const auto& [path, text] : pipelineFiles)
        SLUICE_RETURN_IF_ERROR(parsePipeline(text, path, baseDir, *spec));

    SLUICE_RETURN_IF_ERROR(checkPipeline(*spec));
    SLUICE_RETURN_IF_ERROR(loadExporters(config, *spec));
    return PipelinePtr(std::move(spec));
}

}  // namespace sluice::config
