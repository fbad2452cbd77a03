#include "job/output_file.h"

#include <filesystem>

#include "core/wipe.h"

namespace sluice::job {
namespace {

namespace fs = std::filesystem;

mode_t modeOf(bool secret)
{
    return secret ? 0600 : 0644;
}

}  // namespace

std::string partialPath(const std::string& finalPath)
{
    const fs::path p(finalPath);
    std::string name = ".";  // built by appends: g++ 12 warns (-Wrestrict) about "." + string
    name += p.filename().string();
    name += ".sluice-partial";
    return (p.parent_path() / name).string();
}

Status OutputFile::create(const std::string& finalPath, bool secret)
{
    final_ = finalPath;
    std::error_code ec;
    fs::create_directories(fs::path(finalPath).parent_path(), ec);
    if (ec)
        return Status::ioError("cannot create the directory of " + finalPath + ": " + ec.message());
    auto file = DurableFile::create(partialPath(finalPath), modeOf(secret));
    if (!file)
        return file.status();
    file_ = std::move(*file);
    secret_ = secret;
    written_ = size_ = 0;
    buffer_.clear();
    return syncDirectoryOf(file_.path());
}

Status OutputFile::resume(const std::string& finalPath, bool secret, uint64_t size)
{
    final_ = finalPath;
    auto file = DurableFile::resume(partialPath(finalPath), modeOf(secret), size);
    if (!file)
        return file.status();
    file_ = std::move(*file);
    secret_ = secret;
    written_ = size_ = size;
    buffer_.clear();
    return Status::ok();
}

Status OutputFile::flush()
{
    SLUICE_RETURN_IF_ERROR(file_.write(buffer_));
    // Nothing is fsynced before publishing (job_runner.h); the disk starts on it now, so that
    // publishing does not wait for all of it.
    file_.startWriteback(written_, buffer_.size());
    written_ += buffer_.size();
    if (secret_)
        wipe(buffer_);
    buffer_.clear();
    return Status::ok();
}

Status OutputFile::sync()
{
    SLUICE_RETURN_IF_ERROR(flush());
    return file_.sync();
}

Status OutputFile::publish()
{
    SLUICE_RETURN_IF_ERROR(flush());
    return file_.publish(final_);
}

}  // namespace sluice::job
