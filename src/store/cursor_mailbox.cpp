#include "store/cursor_mailbox.h"

#include <utility>

namespace sluice::store {

bool CursorMailbox::post(const std::string& exporter, const ExportCursor& cursor, int64_t nowMs)
{
    std::lock_guard lock(mutex_);
    if (closed_)
        return false;
    posted_[exporter] = Posted{cursor, nowMs};
    pending_.store(true, std::memory_order_release);
    return true;
}

Status CursorMailbox::write(Db& db, std::map<std::string, Posted>& posted)
{
    for (const auto& [exporter, p] : posted)
        SLUICE_RETURN_IF_ERROR(saveCursor(db, exporter, p.cursor, p.atMs));
    return Status::ok();
}

Status CursorMailbox::writeTo(Db& db)
{
    std::map<std::string, Posted> posted;
    {
        std::lock_guard lock(mutex_);
        posted.swap(posted_);
        pending_.store(false, std::memory_order_release);
    }
    return write(db, posted);
}

Status CursorMailbox::close(Db* db)
{
    std::map<std::string, Posted> posted;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        posted.swap(posted_);
        pending_.store(false, std::memory_order_release);
    }
    if (!db || posted.empty())
        return Status::ok();
    auto txn = Txn::begin(*db);
    if (!txn)
        return txn.status();
    SLUICE_RETURN_IF_ERROR(write(*db, posted));
    return txn->commit();
}

}  // namespace sluice::store
