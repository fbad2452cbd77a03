#include "job/inputs.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "job/byte_source.h"
#include "job/job_file.h"
#include "job/record_reader.h"

namespace sluice::job {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

std::string displayName(const JobSpec& job, const std::string& path)
{
    const fs::path rel = fs::path(path).lexically_relative(job.dir);
    if (!rel.empty() && rel.begin()->string() != "..")
        return rel.string();
    return path;
}

}  // namespace

// Reads the inputs' sizes and headers and checks them against the job (before any row).
Result<std::vector<InputInfo>> inspectInputs(const JobSpec& job)
{
    std::vector<InputInfo> inputs;
    for (const std::string& path : job.input.files) {
        InputInfo info;
        info.path = path;
        info.name = displayName(job, path);
        struct stat st{};
        if (::stat(path.c_str(), &st) != 0)
            return Status::ioError("cannot stat " + path + ": " + std::strerror(errno));
        info.size = static_cast<uint64_t>(st.st_size);
        info.mtimeNs = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
        std::vector<std::string> header;
        if (job.input.format == InputFormat::kCsv) {
            auto source = ByteSource::open(path, job.input.compression);
            if (!source)
                return source.status();
            auto reader = makeCsvReader(**source, job.input.csv, job.input.maxRowBytes);
            auto h = reader->header();
            if (!h)
                return Status::invalid(info.name + ": " + h.status().message());
            header = std::move(*h);
            SLUICE_RETURN_IF_ERROR(checkHeader(job, header, info.name));
        }
        info.layout = makeLayout(job, header);
        inputs.push_back(std::move(info));
    }
    return inputs;
}

std::string fingerprintOf(const JobSpec& job, const std::vector<InputInfo>& inputs)
{
    Json j;
    j["job"] = job.text;
    Json files = Json::array();
    for (const InputInfo& i : inputs)
        files.push_back({i.path, i.size, i.mtimeNs});
    j["inputs"] = files;
    return j.dump();
}

}  // namespace sluice::job
