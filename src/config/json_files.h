// What the contract, pipeline and exporter loaders share: reading a directory of JSON files and
// errors of the form "<file>: <json path>: <problem>".
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace sluice::config {

// An invalid-argument status naming the file and, unless `where` is empty, the JSON path in it.
Status fileError(const std::string& file, const std::string& where, const std::string& problem);

// `text` parsed as JSON (keys in file order), or an error naming `file`.
Result<nlohmann::ordered_json> parseJsonText(const std::string& text, const std::string& file);

// Every *.json file of `dir` as (path, text), sorted by path. `what` names the directory in
// errors ("contracts", "exporters").
Result<std::vector<std::pair<std::string, std::string>>> readJsonFiles(const std::string& dir, const char* what);

}  // namespace sluice::config
