#include "job/job_file.h"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "config/builtin.h"
#include "config/config.h"
#include "config/pipeline_parts.h"
#include "core/time_format.h"

namespace sluice::job {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// Aggregations of a job see every row before anything is written: no window is final before
// the end, whatever order the rows come in. The largest lateness the aggregations accept
// (2^40 ms, 34 years): rows more than that older than the job's latest row would count as late.
constexpr int64_t kJobLatenessMs = int64_t{1} << 40;

class Checker {
public:
    explicit Checker(std::string file) : file_(std::move(file)) {}

    Status bad(const std::string& where, const std::string& problem) const
    {
        return Status::invalid(file_ + ": " + (where.empty() ? "" : where + ": ") + problem);
    }
    Status onlyKeys(const Json& j, std::initializer_list<const char*> allowed, const std::string& where) const
    {
        if (!j.is_object())
            return bad(where, "must be an object");
        for (const auto& item : j.items()) {
            if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return item.key() == a; })) {
                std::string list;
                for (const char* a : allowed)
                    list += std::string(list.empty() ? "" : ", ") + a;
                return bad(where.empty() ? item.key() : where + "." + item.key(), "unknown key (expected one of: " + list + ")");
            }
        }
        return Status::ok();
    }
    Result<std::string> string(const Json& j, const std::string& where, bool allowEmpty = false) const
    {
        if (!j.is_string() || (!allowEmpty && j.get<std::string>().empty()))
            return bad(where, "must be a non-empty string");
        return j.get<std::string>();
    }
    const std::string& file() const { return file_; }

private:
    std::string file_;
};

std::string absolute(const std::string& dir, const std::string& path)
{
    fs::path p(path);
    if (p.is_relative())
        p = fs::path(dir) / p;
    return p.lexically_normal().string();
}

bool validId(const std::string& id)
{
    if (id.empty() || id.size() > 100)
        return false;
    for (char c : id)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return false;
    return id[0] != '.';
}

Result<FileFormat> formatOf(const Checker& c, const std::string& where, const std::string& path, const Json* explicitFormat)
{
    if (explicitFormat) {
        auto f = c.string(*explicitFormat, where + ".format");
        if (!f)
            return f.status();
        if (*f == "csv")
            return FileFormat::kCsv;
        if (*f == "jsonl")
            return FileFormat::kJsonl;
        return c.bad(where + ".format", "must be \"csv\" or \"jsonl\"");
    }
    const std::string ext = fs::path(path).extension().string();
    if (ext == ".csv")
        return FileFormat::kCsv;
    if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json")
        return FileFormat::kJsonl;
    return c.bad(where, "cannot tell the format from the name " + path + ": add \"format\": \"csv\" or \"jsonl\"");
}

// A file output: "path" or {"path": ..., "format": ...}.
Result<FileOutput> fileOutput(const Checker& c, const Json& j, const std::string& where, const std::string& dir)
{
    const Json* format = nullptr;
    std::string path;
    if (j.is_string()) {
        path = j.get<std::string>();
    } else {
        SLUICE_RETURN_IF_ERROR(c.onlyKeys(j, {"path", "format"}, where));
        if (!j.contains("path"))
            return c.bad(where + ".path", "is required");
        auto p = c.string(j["path"], where + ".path");
        if (!p)
            return p.status();
        path = *p;
        if (j.contains("format"))
            format = &j["format"];
    }
    if (path.empty())
        return c.bad(where, "the path is empty");
    FileOutput out;
    out.path = absolute(dir, path);
    auto f = formatOf(c, where, path, format);
    if (!f)
        return f.status();
    out.format = *f;
    return out;
}

Result<ConsentMask> levels(const Checker& c, const Json& j, const std::string& where)
{
    ConsentMask mask = 0;
    if (j.is_number_integer()) {
        const int64_t v = j.get<int64_t>();
        if (v < 0 || v > kMaxPurposeLevel)
            return c.bad(where, "purpose levels are integers from 0 to " + std::to_string(kMaxPurposeLevel));
        return ConsentMask{1} << v;
    }
    if (!j.is_array())
        return c.bad(where, "must be a list of purpose levels such as [0, 1] (or one level)");
    for (const Json& level : j) {
        if (!level.is_number_integer() || level.get<int64_t>() < 0 || level.get<int64_t>() > kMaxPurposeLevel)
            return c.bad(where, "purpose levels are integers from 0 to " + std::to_string(kMaxPurposeLevel));
        mask |= ConsentMask{1} << level.get<int64_t>();
    }
    return mask;
}

Result<std::vector<std::string>> expand(const Checker& c, const std::vector<std::string>& patterns, const std::string& dir)
{
    std::vector<std::string> files;
    std::set<std::string> seen;
    for (size_t i = 0; i < patterns.size(); ++i) {
        const std::string where = "input.files[" + std::to_string(i) + "]";
        const std::string pattern = absolute(dir, patterns[i]);
        std::vector<std::string> matched;
        if (pattern.find_first_of("*?[") != std::string::npos) {
            glob_t g{};
            const int rc = ::glob(pattern.c_str(), GLOB_ERR, nullptr, &g);
            if (rc == 0)
                for (size_t k = 0; k < g.gl_pathc; ++k)
                    matched.emplace_back(g.gl_pathv[k]);
            globfree(&g);
            if (rc != 0 && rc != GLOB_NOMATCH)
                return c.bad(where, "cannot expand " + pattern);
            if (matched.empty())
                return c.bad(where, pattern + " matches no file");
            std::sort(matched.begin(), matched.end());
        } else {
            matched.push_back(pattern);
        }
        for (std::string& f : matched) {
            struct stat st{};
            if (::stat(f.c_str(), &st) != 0)
                return c.bad(where, f + " does not exist");
            if (!S_ISREG(st.st_mode)) {
                if (matched.size() == 1)
                    return c.bad(where, f + " is not a regular file");
                continue;  // a directory matched by a glob
            }
            if (seen.insert(f).second)
                files.push_back(std::move(f));
        }
    }
    if (files.empty())
        return c.bad("input.files", "names no file");
    return files;
}

Result<std::shared_ptr<PipelineSpec>> loadContract(const Checker& c, const Json& j, const std::string& dir)
{
    if (!j.contains("contract"))
        return c.bad("contract", "is required: the ref of the contract the rows follow (handle/name/1.0.0)");
    auto ref = c.string(j["contract"], "contract");
    if (!ref)
        return ref.status();
    std::string source = config::kBuiltinSource;
    if (j.contains("contracts")) {
        auto s = c.string(j["contracts"], "contracts");
        if (!s)
            return s.status();
        source = *s == config::kBuiltinSource ? *s : absolute(dir, *s);
    }
    auto spec = std::make_shared<PipelineSpec>();
    std::error_code ec;
    if (source != config::kBuiltinSource && fs::is_regular_file(source, ec)) {
        std::ifstream in(source, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        if (!in)
            return c.bad("contracts", "cannot read " + source);
        auto contract = config::parseContract(text.str(), source);
        if (!contract)
            return contract.status();
        if (contract->ref != *ref)
            return c.bad("contract", source + " defines " + contract->ref + ", not " + *ref);
        spec->contracts.push_back(std::move(*contract));
        return spec;
    }
    config::PipelineConfig pc;
    pc.contractsDir = source;
    pc.pipelinesDir = "";
    auto loaded = config::loadPipeline(pc);
    if (!loaded)
        return loaded.status();
    const ContractSpec* found = (*loaded)->findContract(*ref);
    if (!found)
        return c.bad("contract", "no contract " + *ref + " in " +
                                     (source == config::kBuiltinSource ? std::string("the built-in contracts") : source));
    spec->contracts.push_back(*found);
    return spec;
}

Status loadInput(const Checker& c, const Json& j, JobSpec& job)
{
    if (!j.contains("input"))
        return c.bad("input", "is required");
    const Json& in = j["input"];
    SLUICE_RETURN_IF_ERROR(
        c.onlyKeys(in, {"files", "format", "compression", "delimiter", "quote", "columns", "max_row_bytes"}, "input"));
    if (!in.contains("files"))
        return c.bad("input.files", "is required: file names or glob patterns");
    if (in["files"].is_string()) {
        job.input.patterns.push_back(in["files"].get<std::string>());
    } else if (in["files"].is_array() && !in["files"].empty()) {
        for (size_t i = 0; i < in["files"].size(); ++i) {
            auto f = c.string(in["files"][i], "input.files[" + std::to_string(i) + "]");
            if (!f)
                return f.status();
            job.input.patterns.push_back(*f);
        }
    } else {
        return c.bad("input.files", "must be a file name, a glob pattern, or a non-empty list of them");
    }
    auto files = expand(c, job.input.patterns, job.dir);
    if (!files)
        return files.status();
    job.input.files = std::move(*files);

    if (!in.contains("format"))
        return c.bad("input.format", "is required: \"csv\" or \"jsonl\"");
    auto format = c.string(in["format"], "input.format");
    if (!format)
        return format.status();
    if (*format == "csv")
        job.input.format = InputFormat::kCsv;
    else if (*format == "jsonl")
        job.input.format = InputFormat::kJsonl;
    else
        return c.bad("input.format", "must be \"csv\" or \"jsonl\"");
    if (in.contains("compression")) {
        auto z = c.string(in["compression"], "input.compression");
        if (!z)
            return z.status();
        if (*z == "auto")
            job.input.compression = Compression::kAuto;
        else if (*z == "gzip")
            job.input.compression = Compression::kGzip;
        else if (*z == "none")
            job.input.compression = Compression::kNone;
        else
            return c.bad("input.compression", "must be \"auto\" (by the first bytes), \"gzip\" or \"none\"");
    }
    for (const char* key : {"delimiter", "quote"}) {
        if (!in.contains(key))
            continue;
        const std::string where = std::string("input.") + key;
        if (job.input.format != InputFormat::kCsv)
            return c.bad(where, "applies to CSV input only");
        auto s = c.string(in[key], where);
        if (!s)
            return s.status();
        std::string v = *s == "\\t" ? "\t" : *s;
        if (v.size() != 1 || v[0] == '\n' || v[0] == '\r')
            return c.bad(where, "must be one character (\"\\t\" for a tab)");
        (key[0] == 'd' ? job.input.csv.delimiter : job.input.csv.quote) = v[0];
    }
    if (job.input.csv.delimiter == job.input.csv.quote)
        return c.bad("input.quote", "must differ from the delimiter");
    if (in.contains("columns")) {
        const Json& cols = in["columns"];
        if (!cols.is_object())
            return c.bad("input.columns", "must be an object: {\"Input name\": \"field\" (rename) or null (ignore)}");
        for (const auto& [name, target] : cols.items()) {
            const std::string where = "input.columns." + name;
            ColumnRule rule;
            rule.input = name;
            if (target.is_string()) {
                const std::string field = target.get<std::string>();
                if (job.contract().fieldIndex(field) < 0)
                    return c.bad(where, "'" + field + "' is not a field of " + job.contract().ref);
                rule.field = field;
            } else if (!target.is_null()) {
                return c.bad(where, "must be a field name (rename) or null (ignore)");
            }
            job.input.columns.push_back(std::move(rule));
        }
        std::set<std::string> targets;
        for (const ColumnRule& r : job.input.columns)
            if (r.field && !targets.insert(*r.field).second)
                return c.bad("input.columns", "two columns are renamed to '" + *r.field + "'");
    }
    if (in.contains("max_row_bytes")) {
        std::optional<uint64_t> size;
        if (in["max_row_bytes"].is_string())
            size = parseSize(in["max_row_bytes"].get<std::string>());
        else if (in["max_row_bytes"].is_number_unsigned())
            size = in["max_row_bytes"].get<uint64_t>();
        if (!size || *size < 64 || *size > (256u << 20))
            return c.bad("input.max_row_bytes", "must be a size from 64 bytes to 256M, such as \"1M\"");
        job.input.maxRowBytes = *size;
    }
    return Status::ok();
}

Status loadTimestamp(const Checker& c, const Json& j, JobSpec& job)
{
    if (!j.contains("timestamp"))
        return c.bad("timestamp", "is required: {\"field\": ..., \"format\": ..., \"zone\": ...}");
    const Json& t = j["timestamp"];
    SLUICE_RETURN_IF_ERROR(c.onlyKeys(t, {"field", "format", "zone", "fold", "gap"}, "timestamp"));
    if (!t.contains("field"))
        return c.bad("timestamp.field", "is required: the input field that holds each record's time");
    auto field = c.string(t["field"], "timestamp.field");
    if (!field)
        return field.status();
    TimestampSpec& ts = job.timestamp;
    ts.column = *field;
    if (t.contains("format")) {
        auto f = c.string(t["format"], "timestamp.format");
        if (!f)
            return f.status();
        if (*f == "iso8601")
            ts.format = TimeFormat::kIso8601;
        else if (*f == "epoch_s")
            ts.format = TimeFormat::kEpochSeconds;
        else if (*f == "epoch_ms")
            ts.format = TimeFormat::kEpochMillis;
        else if (f->find('%') != std::string::npos) {
            ts.format = TimeFormat::kPattern;
            ts.pattern = *f;
        } else
            return c.bad("timestamp.format",
                         "must be \"iso8601\", \"epoch_s\", \"epoch_ms\" or a pattern such as \"%m/%d/%Y %H:%M\"");
    }
    if (t.contains("zone")) {
        auto z = c.string(t["zone"], "timestamp.zone");
        if (!z)
            return z.status();
        ts.zone = *z;
    }
    if (t.contains("fold")) {
        auto f = c.string(t["fold"], "timestamp.fold");
        if (!f)
            return f.status();
        if (*f == "earlier")
            ts.fold = FoldChoice::kEarlier;
        else if (*f == "later")
            ts.fold = FoldChoice::kLater;
        else if (*f == "reject")
            ts.fold = FoldChoice::kReject;
        else
            return c.bad("timestamp.fold", "must be \"earlier\", \"later\" or \"reject\"");
    }
    if (t.contains("gap")) {
        auto g = c.string(t["gap"], "timestamp.gap");
        if (!g)
            return g.status();
        if (*g == "shift_forward")
            ts.gap = GapChoice::kShiftForward;
        else if (*g == "reject")
            ts.gap = GapChoice::kReject;
        else
            return c.bad("timestamp.gap", "must be \"shift_forward\" or \"reject\"");
    }
    auto parser = TimestampParser::create(ts);
    if (!parser)
        return c.bad("timestamp", parser.status().message());
    return Status::ok();
}

Status loadConsent(const Checker& c, const Json& j, JobSpec& job)
{
    if (!j.contains("consent"))
        return c.bad("consent", "is required: {\"field\": ..., \"values\": {...}, \"default\": [...]} or {\"default\": [...]}");
    const Json& k = j["consent"];
    SLUICE_RETURN_IF_ERROR(c.onlyKeys(k, {"field", "values", "literal", "default"}, "consent"));
    ConsentSpec& cs = job.consent;
    if (k.contains("field")) {
        auto f = c.string(k["field"], "consent.field");
        if (!f)
            return f.status();
        cs.column = *f;
    }
    if (k.contains("values")) {
        if (!k["values"].is_object())
            return c.bad("consent.values", "must map values to purpose levels: {\"yes\": [0, 1, 2], \"no\": []}");
        for (const auto& [value, target] : k["values"].items()) {
            auto mask = levels(c, target, "consent.values." + value);
            if (!mask)
                return mask.status();
            cs.values.emplace_back(value, *mask);
        }
    }
    if (k.contains("literal")) {
        if (!k["literal"].is_boolean())
            return c.bad("consent.literal", "must be true or false");
        cs.literal = k["literal"].get<bool>();
    }
    if (k.contains("default")) {
        auto mask = levels(c, k["default"], "consent.default");
        if (!mask)
            return mask.status();
        cs.fallback = *mask;
    }
    if (cs.column.empty() && !cs.fallback)
        return c.bad("consent", "names no field and no default: every row needs its consent from one of them");
    if (cs.column.empty() && !cs.values.empty())
        return c.bad("consent.values", "needs consent.field");
    return Status::ok();
}

Status loadOutputs(const Checker& c, const Json& j, JobSpec& job, PipelineSpec& pipeline)
{
    if (!j.contains("outputs"))
        return c.bad("outputs", "is required");
    const Json& o = j["outputs"];
    SLUICE_RETURN_IF_ERROR(
        c.onlyKeys(o, {"encrypted", "keys", "derived", "aggregations", "rejects", "database"}, "outputs"));
    const ContractSpec& contract = pipeline.contracts.front();
    if (o.contains("encrypted")) {
        auto f = fileOutput(c, o["encrypted"], "outputs.encrypted", job.dir);
        if (!f)
            return f.status();
        job.outputs.encrypted = *f;
    }
    if (o.contains("keys")) {
        const Json& k = o["keys"];
        SLUICE_RETURN_IF_ERROR(c.onlyKeys(k, {"csv", "tink"}, "outputs.keys"));
        if (k.empty())
            return c.bad("outputs.keys", "names no file: give \"csv\" and/or \"tink\"");
        for (const char* key : {"csv", "tink"}) {
            if (!k.contains(key))
                continue;
            auto p = c.string(k[key], std::string("outputs.keys.") + key);
            if (!p)
                return p.status();
            (key[0] == 'c' ? job.outputs.keysCsv : job.outputs.keysTink) = absolute(job.dir, *p);
        }
    }
    if (o.contains("derived")) {
        if (!o["derived"].is_array())
            return c.bad("outputs.derived", "must be a list");
        for (size_t i = 0; i < o["derived"].size(); ++i) {
            const std::string where = "outputs.derived[" + std::to_string(i) + "]";
            Json d = o["derived"][i];
            if (!d.is_object())
                return c.bad(where, "must be an object");
            NamedOutput named;
            if (d.contains("path")) {
                Json file = {{"path", d["path"]}};
                if (d.contains("format"))
                    file["format"] = d["format"];
                auto f = fileOutput(c, file, where, job.dir);
                if (!f)
                    return f.status();
                named.file = *f;
                d.erase("path");
                d.erase("format");
            } else if (d.contains("format")) {
                return c.bad(where + ".format", "needs a path");
            }
            auto spec = config::parseOutput(d, contract.ref, c.file(), where, job.dir);
            if (!spec)
                return spec.status();
            named.name = spec->name;
            pipeline.outputs.push_back(std::move(*spec));
            job.outputs.derived.push_back(std::move(named));
        }
    }
    if (o.contains("aggregations")) {
        if (!o["aggregations"].is_array())
            return c.bad("outputs.aggregations", "must be a list");
        for (size_t i = 0; i < o["aggregations"].size(); ++i) {
            const std::string where = "outputs.aggregations[" + std::to_string(i) + "]";
            Json a = o["aggregations"][i];
            if (!a.is_object())
                return c.bad(where, "must be an object");
            if (a.contains("allowed_lateness"))
                return c.bad(where + ".allowed_lateness",
                             "does not apply to a job: its aggregations see every row before any window is written");
            NamedOutput named;
            if (a.contains("path")) {
                Json file = {{"path", a["path"]}};
                if (a.contains("format"))
                    file["format"] = a["format"];
                auto f = fileOutput(c, file, where, job.dir);
                if (!f)
                    return f.status();
                named.file = *f;
                a.erase("path");
                a.erase("format");
            } else if (a.contains("format")) {
                return c.bad(where + ".format", "needs a path");
            }
            a["allowed_lateness"] = "0s";  // the grammar wants one; replaced below
            auto spec = config::parseAggregation(a, contract.ref, c.file(), where);
            if (!spec)
                return spec.status();
            spec->allowedLatenessMs = kJobLatenessMs;
            named.name = spec->name;
            pipeline.aggregations.push_back(std::move(*spec));
            job.outputs.aggregations.push_back(std::move(named));
        }
    }
    if (o.contains("rejects")) {
        auto f = fileOutput(c, o["rejects"], "outputs.rejects", job.dir);
        if (!f)
            return f.status();
        job.outputs.rejects = *f;
    }
    if (o.contains("database")) {
        auto p = c.string(o["database"], "outputs.database");
        if (!p)
            return p.status();
        job.outputs.database = absolute(job.dir, *p);
    }
    std::set<std::string> paths;
    for (const std::string& p : job.outputPaths()) {
        if (!paths.insert(p).second)
            return c.bad("outputs", p + " is named twice");
        if (std::find(job.input.files.begin(), job.input.files.end(), p) != job.input.files.end())
            return c.bad("outputs", p + " is also an input");
    }
    return Status::ok();
}

}  // namespace

std::string_view formatName(FileFormat format) { return format == FileFormat::kCsv ? "csv" : "jsonl"; }

std::vector<std::string> JobSpec::outputPaths() const
{
    std::vector<std::string> paths;
    if (outputs.encrypted.wanted())
        paths.push_back(outputs.encrypted.path);
    for (const std::string* p : {&outputs.keysCsv, &outputs.keysTink, &outputs.database})
        if (!p->empty())
            paths.push_back(*p);
    for (const auto* list : {&outputs.derived, &outputs.aggregations})
        for (const NamedOutput& n : *list)
            if (n.file.wanted())
                paths.push_back(n.file.path);
    if (outputs.rejects.wanted())
        paths.push_back(outputs.rejects.path);
    return paths;
}

Result<JobSpec> loadJobFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return Status::notFound("cannot read the job file " + path);
    std::ostringstream text;
    text << in.rdbuf();
    Checker c(path);
    Json j;
    try {
        j = Json::parse(text.str());
    } catch (const Json::parse_error& e) {
        return c.bad("", std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object())
        return c.bad("", "a job file is a JSON object");
    SLUICE_RETURN_IF_ERROR(c.onlyKeys(j,
                                      {"id", "group", "description", "contract", "contracts", "master_key_file",
                                       "key_store", "work_dir", "input", "event_id", "timestamp", "consent", "outputs",
                                       "max_reject_share", "chunk_rows", "key_cache_entries",
                                       "key_directory_entries"},
                                      ""));
    JobSpec job;
    job.path = fs::absolute(path).lexically_normal().string();
    job.dir = fs::path(job.path).parent_path().string();
    job.text = j.dump();
    if (!j.contains("id"))
        return c.bad("id", "is required: a name for this job (letters, digits, '.', '_', '-')");
    auto id = c.string(j["id"], "id");
    if (!id)
        return id.status();
    if (!validId(*id))
        return c.bad("id", "'" + *id + "' must be 1 to 100 letters, digits, '.', '_' or '-', not starting with '.'");
    job.id = *id;
    job.group = job.id;
    if (j.contains("group")) {
        auto g = c.string(j["group"], "group");
        if (!g)
            return g.status();
        if (!validId(*g))
            return c.bad("group", "'" + *g + "' must be 1 to 100 letters, digits, '.', '_' or '-', not starting with '.'");
        job.group = *g;
    }
    if (j.contains("description") && !j["description"].is_string())
        return c.bad("description", "must be a string");

    auto pipeline = loadContract(c, j, job.dir);
    if (!pipeline)
        return pipeline.status();
    job.pipeline = *pipeline;  // outputs and aggregations are added below, then checked

    if (j.contains("master_key_file")) {
        auto m = c.string(j["master_key_file"], "master_key_file");
        if (!m)
            return m.status();
        job.masterKeyFile = absolute(job.dir, *m);
    }
    std::string keyStoreDir = absolute(job.dir, "sluice-keys");
    if (j.contains("key_store")) {
        auto k = c.string(j["key_store"], "key_store");
        if (!k)
            return k.status();
        keyStoreDir = absolute(job.dir, *k);
    }
    job.keyStore = (fs::path(keyStoreDir) / (job.group + ".keys.db")).string();
    job.workDir = absolute(job.dir, "." + job.id + ".sluice-job");
    if (j.contains("work_dir")) {
        auto w = c.string(j["work_dir"], "work_dir");
        if (!w)
            return w.status();
        job.workDir = absolute(job.dir, *w);
    }

    SLUICE_RETURN_IF_ERROR(loadInput(c, j, job));
    if (j.contains("event_id")) {
        auto e = c.string(j["event_id"], "event_id");
        if (!e)
            return e.status();
        job.eventIdField = *e;
    }
    SLUICE_RETURN_IF_ERROR(loadTimestamp(c, j, job));
    SLUICE_RETURN_IF_ERROR(loadConsent(c, j, job));
    SLUICE_RETURN_IF_ERROR(loadOutputs(c, j, job, **pipeline));
    if (job.outputPaths().empty())
        return c.bad("outputs", "names no output: give at least one of encrypted, keys, derived, aggregations, "
                                "rejects or database (or use --send)");
    SLUICE_RETURN_IF_ERROR(config::checkPipeline(**pipeline));  // messages name the job file

    if (j.contains("max_reject_share")) {
        if (!j["max_reject_share"].is_number() || j["max_reject_share"].get<double>() < 0 ||
            j["max_reject_share"].get<double>() > 1)
            return c.bad("max_reject_share", "must be a number from 0 to 1 (0.1 = 10% of the rows)");
        job.maxRejectShare = j["max_reject_share"].get<double>();
    }
    if (j.contains("chunk_rows")) {
        if (!j["chunk_rows"].is_number_unsigned() || j["chunk_rows"].get<uint64_t>() < 1 ||
            j["chunk_rows"].get<uint64_t>() > 1'000'000)
            return c.bad("chunk_rows", "must be an integer from 1 to 1000000");
        job.chunkRows = j["chunk_rows"].get<uint32_t>();
    }
    for (auto [name, to] : {std::pair{"key_cache_entries", &job.keyCacheEntries},
                            std::pair{"key_directory_entries", &job.keyDirectoryEntries}}) {
        if (!j.contains(name))
            continue;
        if (!j[name].is_number_unsigned() || j[name].get<uint64_t>() < 1000 || j[name].get<uint64_t>() > 100'000'000)
            return c.bad(name, "must be an integer from 1000 to 100000000");
        *to = j[name].get<uint64_t>();
    }

    return job;
}

Status checkHeader(const JobSpec& job, const std::vector<std::string>& header, const std::string& file)
{
    const ContractSpec& contract = job.contract();
    std::set<std::string> seen;
    std::vector<bool> covered(contract.fields.size(), false);
    for (const std::string& name : header) {
        if (!seen.insert(name).second)
            return Status::invalid(file + ": the header names column '" + name + "' twice");
        const ColumnRule* rule = nullptr;
        for (const ColumnRule& r : job.input.columns)
            if (r.input == name)
                rule = &r;
        std::string field = rule ? rule->field.value_or("") : name;
        if (rule && !rule->field)
            continue;  // ignored
        const int f = contract.fieldIndex(field);
        if (f >= 0) {
            if (covered[static_cast<size_t>(f)])
                return Status::invalid(file + ": column '" + name + "' and another both fill field '" + field + "'");
            covered[static_cast<size_t>(f)] = true;
            continue;
        }
        if (name == job.timestamp.column || name == job.consent.column || name == job.eventIdField)
            continue;
        return Status::invalid(file + ": column '" + name + "' is not a field of " + contract.ref +
                               " (rename it to a field or ignore it in input.columns: {\"" + name + "\": null})");
    }
    for (const char* what : {"timestamp", "consent", "event_id"}) {
        const std::string& column = what[0] == 't' ? job.timestamp.column
                                    : what[0] == 'c' ? job.consent.column
                                                     : job.eventIdField;
        if (!column.empty() && !seen.count(column))
            return Status::invalid(file + ": the header has no column '" + column + "' (the " + what + " field)");
    }
    for (size_t f = 0; f < contract.fields.size(); ++f)
        if (contract.fields[f].required && !covered[f])
            return Status::invalid(file + ": no column fills the required field '" + contract.fields[f].name + "' of " +
                                   contract.ref);
    return Status::ok();
}

}  // namespace sluice::job
