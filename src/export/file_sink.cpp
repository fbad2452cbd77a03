#include "export/file_sink.h"

#include <zstd.h>

#include <chrono>
#include <ctime>
#include <filesystem>

#include "core/durable_file.h"
#include "core/log.h"
#include "core/time_format.h"
#include "core/value.h"
#include "privacy/tink_keyset.h"

namespace sluice::exports {
namespace {

constexpr size_t kSliceBytes = 256 * 1024;  // lines handed to the output at a time

namespace fs = std::filesystem;

// 20251121T080000Z
std::string compactUtc(int64_t epochMs)
{
    const std::time_t t = static_cast<std::time_t>(epochMs / 1000);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

std::string padded(uint64_t n)
{
    std::string s = std::to_string(n);
    return std::string(s.size() < 12 ? 12 - s.size() : 0, '0') + s;
}

struct ZstdCtxFree {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

}  // namespace

// A file being written under its temporary name; finish() makes it visible, durable.
class FileSink::Output {
public:
    static Result<std::unique_ptr<Output>> create(const std::string& dir, const std::string& name, bool zstd, int level)
    {
        std::unique_ptr<Output> o(new Output);
        o->dir_ = dir;
        auto file = DurableFile::create(dir + "/." + name + ".tmp", 0640);
        if (!file)
            return file.status();
        o->file_ = std::move(*file);
        if (zstd) {
            o->zstd_.reset(ZSTD_createCCtx());
            if (!o->zstd_)
                return Status::internal("zstd: cannot create a compression context");
            ZSTD_CCtx_setParameter(o->zstd_.get(), ZSTD_c_compressionLevel, level);
        }
        return o;
    }

    ~Output() { file_.remove(); }  // unfinished: abandoned

    Status append(std::string_view bytes)
    {
        if (!zstd_) {
            buffer_.append(bytes);
        } else {
            ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
            while (in.pos < in.size)
                SLUICE_RETURN_IF_ERROR(compress(in, ZSTD_e_continue));
        }
        return buffer_.size() >= kFlushBytes ? flush() : Status::ok();
    }

    // Flushes and publishes as `name` in the directory (fsync, rename, directory fsync).
    Status finish(const std::string& name)
    {
        if (zstd_) {
            ZSTD_inBuffer in{nullptr, 0, 0};
            SLUICE_RETURN_IF_ERROR(compress(in, ZSTD_e_end));
        }
        SLUICE_RETURN_IF_ERROR(flush());
        SLUICE_RETURN_IF_ERROR(file_.publish(dir_ + "/" + name));
        file_ = DurableFile();
        return Status::ok();
    }

private:
    static constexpr size_t kFlushBytes = 256 * 1024;

    Output() = default;

    Status compress(ZSTD_inBuffer& in, ZSTD_EndDirective mode)
    {
        for (;;) {
            const size_t start = buffer_.size();
            buffer_.resize(start + ZSTD_CStreamOutSize());
            ZSTD_outBuffer out{buffer_.data() + start, ZSTD_CStreamOutSize(), 0};
            const size_t left = ZSTD_compressStream2(zstd_.get(), &out, &in, mode);
            buffer_.resize(start + out.pos);
            if (ZSTD_isError(left))
                return Status::internal(std::string("zstd: ") + ZSTD_getErrorName(left));
            if (buffer_.size() >= kFlushBytes)
                SLUICE_RETURN_IF_ERROR(flush());
            if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
                return Status::ok();
        }
    }

    Status flush()
    {
        SLUICE_RETURN_IF_ERROR(file_.write(buffer_));
        buffer_.clear();
        return Status::ok();
    }

    std::string dir_;
    DurableFile file_;
    std::unique_ptr<ZSTD_CCtx, ZstdCtxFree> zstd_;
    std::string buffer_;
};

FileSink::FileSink(const ExporterSpec& spec) : spec_(spec) {}

FileSink::~FileSink()
{
    close();
}

bool FileSink::parseName(const std::string& exporter, const std::string& file, ParsedName& out)
{
    std::string rest;
    if (file.rfind(exporter + "-forget-", 0) == 0) {
        out.forget = true;
        rest = file.substr(exporter.size() + 8);
    } else if (file.rfind(exporter + "-", 0) == 0) {
        out.forget = false;
        rest = file.substr(exporter.size() + 1);
    } else {
        return false;
    }
    // 20251121T080000Z-000000000123-000000000130<suffix>
    if (rest.size() < 16 + 1 + 12 + 1 + 12 || rest[16] != '-' || rest[29] != '-')
        return false;
    auto number = [](std::string_view s, uint64_t& n) {
        n = 0;
        for (char c : s) {
            if (c < '0' || c > '9')
                return false;
            n = n * 10 + static_cast<uint64_t>(c - '0');
        }
        return true;
    };
    if (!number(std::string_view(rest).substr(17, 12), out.first) ||
        !number(std::string_view(rest).substr(30, 12), out.last))
        return false;
    out.stem = file.substr(0, file.size() - rest.size() + 42);
    out.suffix = rest.substr(42);
    return out.first <= out.last + 1;
}

Status FileSink::open(SinkPosition& position)
{
    close();
    std::error_code ec;
    fs::create_directories(spec_.directory, ec);
    if (ec)
        return Status::ioError("cannot create " + spec_.directory + ": " + ec.message());
    const std::string dataSuffix = spec_.zstd ? ".jsonl.zst" : ".jsonl";
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(spec_.directory, ec))
        names.push_back(entry.path().filename().string());
    if (ec)
        return Status::ioError("cannot list " + spec_.directory + ": " + ec.message());
    std::vector<std::string> dataStems;
    for (const std::string& n : names) {
        ParsedName p;
        if (!parseName(spec_.name, n, p))
            continue;
        if (p.forget)
            position.shredId = std::max<int64_t>(position.shredId, static_cast<int64_t>(p.last));
        else if (p.suffix == ".jsonl" || p.suffix == ".jsonl.zst") {
            position.batchId = std::max(position.batchId, p.last);
            dataStems.push_back(p.stem);
        }
    }
    bool removed = false;
    for (const std::string& n : names) {
        ParsedName p;
        const bool temp = n.size() > 5 && n[0] == '.' && n.rfind(".tmp") == n.size() - 4 &&
                          n.rfind("." + spec_.name + "-", 0) == 0;
        const bool orphanKeys = parseName(spec_.name, n, p) && !p.forget && p.suffix == ".keys.csv" &&
                                std::find(dataStems.begin(), dataStems.end(), p.stem) == dataStems.end();
        if (temp || orphanKeys) {
            // Left by a crash before the data file was renamed: its batches will be written again.
            fs::remove(fs::path(spec_.directory) / n, ec);
            removed = true;
        }
    }
    if (removed)
        SLUICE_RETURN_IF_ERROR(syncDirectory(spec_.directory));
    durable_ = position;
    written_ = position.batchId;
    return Status::ok();
}

Status FileSink::write(const BatchRecords& batch)
{
    midBatch_ = !batch.complete;
    if (batch.complete)
        written_ = batch.batchId;
    const bool empty = batch.empty();
    if (!data_ && empty) {
        // No file is open, so nothing of this batch was written: when this is its last piece,
        // there is nothing to keep and no file is needed.
        if (batch.complete)
            durable_.batchId = batch.batchId;
        return Status::ok();
    }
    if (!data_) {
        firstBatch_ = batch.batchId;
        batchesInFile_ = 0;
        fileCommitMs_ = batch.committedAtMs;
        fileOpenedMs_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
        // The final names are known once the file closes; until then only the temporary one.
        auto data = Output::create(spec_.directory, spec_.name + "-open.jsonl", spec_.zstd, spec_.zstdLevel);
        if (!data)
            return data.status();
        data_ = std::move(*data);
    }
    if (batch.complete)
        ++batchesInFile_;
    std::string lines;
    std::string keyLines;
    for (const BatchRecords::Part& part : batch.parts) {
        for (const Record& r : *part.records) {
            if (part.source == BatchRecords::kKeysSource) {
                privacy::appendKeyExportCsvRow(
                    keyLines, {std::string(r.key), std::string(r.value), std::string(r.contract), r.expiresAtMs});
                continue;
            }
            lines += r.value;
            lines += '\n';
            if (lines.size() >= kSliceBytes) {
                // A large batch goes out in slices: memory stays small.
                SLUICE_RETURN_IF_ERROR(data_->append(lines));
                lines.clear();
            }
        }
    }
    if (!keyLines.empty() && !keys_) {
        auto keys = Output::create(spec_.directory, spec_.name + "-open.keys.csv", false, 0);
        if (!keys)
            return keys.status();
        keys_ = std::move(*keys);
        std::string header;
        privacy::appendKeyExportCsvHeader(header);
        SLUICE_RETURN_IF_ERROR(keys_->append(header));
    }
    if (!keyLines.empty())
        SLUICE_RETURN_IF_ERROR(keys_->append(keyLines));
    return data_->append(lines);
}

Status FileSink::forget(const std::vector<store::ShredEntry>& entries)
{
    if (pendingForget_.empty() && !entries.empty())
        forgetSinceMs_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    pendingForget_.insert(pendingForget_.end(), entries.begin(), entries.end());
    return Status::ok();
}

Status FileSink::writeForgetLog()
{
    if (pendingForget_.empty())
        return Status::ok();
    std::string lines;
    for (const store::ShredEntry& e : pendingForget_) {
        for (const std::string& link : e.keyLinks) {
            lines += "{\"shred_id\":" + std::to_string(e.id) + ",\"at\":";
            appendJsonString(lines, isoTimeMs(e.atMs));
            lines += ",\"at_ms\":" + std::to_string(e.atMs) + ",\"cause\":";
            appendJsonString(lines, e.cause);
            lines += ",\"key_link\":";
            appendJsonString(lines, link);
            lines += "}\n";
        }
    }
    const auto first = static_cast<uint64_t>(pendingForget_.front().id);
    const auto last = static_cast<uint64_t>(pendingForget_.back().id);
    const std::string name = spec_.name + "-forget-" + compactUtc(pendingForget_.front().atMs) + "-" + padded(first) +
                             "-" + padded(last) + ".jsonl";
    auto out = Output::create(spec_.directory, name, false, 0);
    if (!out)
        return out.status();
    SLUICE_RETURN_IF_ERROR((*out)->append(lines));
    SLUICE_RETURN_IF_ERROR((*out)->finish(name));
    durable_.shredId = static_cast<int64_t>(last);
    pendingForget_.clear();
    return Status::ok();
}

Status FileSink::closeFiles()
{
    SLUICE_RETURN_IF_ERROR(writeForgetLog());
    if (!data_)
        return Status::ok();
    const std::string stem = spec_.name + "-" + compactUtc(fileCommitMs_) + "-" + padded(firstBatch_) + "-" +
                             padded(written_);
    // Keys first, the data file last: the data file is the commit point of these batches.
    if (keys_) {
        SLUICE_RETURN_IF_ERROR(keys_->finish(stem + ".keys.csv"));
        keys_.reset();
    }
    SLUICE_RETURN_IF_ERROR(data_->finish(stem + (spec_.zstd ? ".jsonl.zst" : ".jsonl")));
    data_.reset();
    durable_.batchId = written_;
    return Status::ok();
}

Result<SinkPosition> FileSink::sync(int64_t nowMs, bool force)
{
    // Never inside a batch: a file holds whole batches (even at a forced sync: the exporter
    // finishes the batch before it stops; a file left open is abandoned and written again).
    const bool dataDue = data_ && !midBatch_ &&
                         (force || nowMs >= fileOpenedMs_ + spec_.intervalMs ||
                          (spec_.everyBatches > 0 && batchesInFile_ >= spec_.everyBatches));
    const bool forgetDue = !pendingForget_.empty() && (force || nowMs >= forgetSinceMs_ + spec_.intervalMs);
    if (dataDue) {
        SLUICE_RETURN_IF_ERROR(closeFiles());
    } else if (forgetDue) {
        SLUICE_RETURN_IF_ERROR(writeForgetLog());
    }
    return durable_;
}

int64_t FileSink::deadlineMs() const
{
    int64_t deadline = 0;
    if (data_)
        deadline = fileOpenedMs_ + spec_.intervalMs;
    if (!pendingForget_.empty()) {
        const int64_t f = forgetSinceMs_ + spec_.intervalMs;
        deadline = deadline ? std::min(deadline, f) : f;
    }
    return deadline;
}

void FileSink::close()
{
    midBatch_ = false;
    data_.reset();  // an unfinished file is abandoned: its temporary name is removed
    keys_.reset();
    pendingForget_.clear();
}

}  // namespace sluice::exports
