// Helpers for the sluicectl tests: run a subcommand in-process with captured streams, and write
// small files.
#pragma once

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace sluice::testing {

struct CliResult {
    int code = -1;
    std::string out;
    std::string err;
};

// `sluicectl args...` with `input` as standard input.
inline CliResult sluicectl(const std::vector<std::string>& args, const std::string& input = {})
{
    std::istringstream in(input);
    std::ostringstream out;
    std::ostringstream err;
    CliResult r;
    r.code = cli::run(args, {in, out, err});
    r.out = out.str();
    r.err = err.str();
    return r;
}

inline void writeFile(const std::string& path, const std::string& content, mode_t mode = 0600)
{
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
    f.close();
    ::chmod(path.c_str(), mode);
}

inline std::vector<std::string> lines(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream s(text);
    std::string line;
    while (std::getline(s, line))
        out.push_back(line);
    return out;
}

}  // namespace sluice::testing
