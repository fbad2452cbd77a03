// Reading what the file exporter wrote, as a downstream job would: every visible file of a
// directory, zstd frames decompressed with libzstd, each line parsed as JSON.
#pragma once

#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::testing {

struct ExportedFiles {
    std::vector<std::string> dataFiles;     // visible *.jsonl / *.jsonl.zst
    std::vector<std::string> keyFiles;      // *.keys.csv
    std::vector<std::string> forgetFiles;   // *-forget-*.jsonl
    std::vector<std::string> hidden;        // temporary files (dot names)
    std::vector<nlohmann::json> records;    // every line of every data file
    std::vector<std::string> keyLines;      // CSV rows without headers
    std::vector<nlohmann::json> forgets;
    std::vector<std::string> problems;      // a file that is partial or does not parse
};

// Decompresses a whole zstd file; false when it is not one or more complete frames.
inline bool unzstd(const std::string& compressed, std::string& out)
{
    std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
    std::string buf(ZSTD_DStreamOutSize(), '\0');
    size_t last = 1;
    while (in.pos < in.size) {
        ZSTD_outBuffer o{buf.data(), buf.size(), 0};
        last = ZSTD_decompressStream(ctx.get(), &o, &in);
        if (ZSTD_isError(last))
            return false;
        out.append(buf.data(), o.pos);
    }
    return last == 0;  // the last frame ended
}

inline void addLines(const std::string& text, const std::string& file, ExportedFiles& f, std::vector<nlohmann::json>& to)
{
    if (!text.empty() && text.back() != '\n')
        f.problems.push_back(file + ": does not end with a newline");
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded())
            f.problems.push_back(file + ": a line is not JSON");
        else
            to.push_back(std::move(j));
    }
}

inline ExportedFiles readExport(const std::string& dir)
{
    ExportedFiles f;
    std::error_code ec;
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
        names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
        const std::string path = dir + "/" + n;
        if (n[0] == '.') {
            f.hidden.push_back(n);
            continue;
        }
        std::ifstream in(path, std::ios::binary);
        if (!in)
            continue;  // gone since the listing: a keys file whose data file a crash kept from its rename
        // Read through the handle just opened: the file may be deleted now (the same case), and
        // an open handle still reads the whole of it, where opening it again would read nothing.
        const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        if (n.find("-forget-") != std::string::npos) {
            f.forgetFiles.push_back(n);
            addLines(text, n, f, f.forgets);
        } else if (n.size() > 9 && n.compare(n.size() - 9, 9, ".keys.csv") == 0) {
            f.keyFiles.push_back(n);
            std::istringstream lines(text);
            std::string line;
            std::getline(lines, line);
            if (line != "keyLink,encryptionKey,policyId,expiresAt")
                f.problems.push_back(n + ": no CSV header");
            while (std::getline(lines, line))
                f.keyLines.push_back(line);
        } else if (n.size() > 10 && n.compare(n.size() - 10, 10, ".jsonl.zst") == 0) {
            f.dataFiles.push_back(n);
            std::string plain;
            if (!unzstd(text, plain))
                f.problems.push_back(n + ": not a complete zstd file");
            addLines(plain, n, f, f.records);
        } else if (n.size() > 6 && n.compare(n.size() - 6, 6, ".jsonl") == 0) {
            f.dataFiles.push_back(n);
            addLines(text, n, f, f.records);
        }
    }
    return f;
}

// Records of one source: events of a contract (meta.contract without meta.output), a derived
// output (meta.output), an aggregation (meta.aggregation).
inline std::vector<nlohmann::json> recordsOf(const ExportedFiles& f, const std::string& kind, const std::string& name)
{
    std::vector<nlohmann::json> out;
    for (const auto& r : f.records) {
        const auto& m = r["meta"];
        if (kind == "contract" && m.contains("contract") && !m.contains("output") && m["contract"] == name)
            out.push_back(r);
        else if (kind == "output" && m.contains("output") && m["output"] == name)
            out.push_back(r);
        else if (kind == "aggregation" && m.contains("aggregation") && m["aggregation"] == name)
            out.push_back(r);
    }
    return out;
}

}  // namespace sluice::testing
