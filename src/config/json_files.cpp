#include "config/json_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice::config {

namespace fs = std::filesystem;

Status fileError(const std::string& file, const std::string& where, const std::string& problem)
{
    return Status::invalid(file + ": " + (where.empty() ? "" : where + ": ") + problem);
}

Result<nlohmann::ordered_json> parseJsonText(const std::string& text, const std::string& file)
{
    try {
        return nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::ordered_json::parse_error& e) {
        return fileError(file, "", std::string("not valid JSON: ") + e.what());
    }
}

Result<std::vector<std::pair<std::string, std::string>>> readJsonFiles(const std::string& dir, const char* what)
{
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        return Status::invalid(std::string(what) + " directory " + dir + " does not exist or is not a directory");
    std::vector<std::string> paths;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().extension() == ".json" && entry.is_regular_file())
            paths.push_back(entry.path().string());
    }
    if (ec)
        return Status::ioError("cannot list " + dir + ": " + ec.message());
    std::sort(paths.begin(), paths.end());
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& path : paths) {
        std::ifstream in(path, std::ios::binary);
        if (!in)
            return Status::ioError(path + ": cannot read");
        std::ostringstream text;
        text << in.rdbuf();
        files.emplace_back(path, text.str());
    }
    return files;
}

}  // namespace sluice::config
