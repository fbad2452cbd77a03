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

std::optional<ExportCursor> CursorMailbox::newest(const std::string& exporter) const
{
    std::lock_guard lock(mutex_);
    for (const Positions* p : {&posted_, &writing_})
        if (auto it = p->find(exporter); it != p->end())
            return it->second.cursor;
    return std::nullopt;
}

Status CursorMailbox::write(Db& db, const Positions& positions)
{
    for (const auto& [exporter, p] : positions)
        SLUICE_RETURN_IF_ERROR(saveCursor(db, exporter, p.cursor, p.atMs));
    return Status::ok();
}

Status CursorMailbox::writeTo(Db& db)
{
    Positions taking;
    {
        std::lock_guard lock(mutex_);
        taking.swap(posted_);
        pending_.store(false, std::memory_order_release);
        for (auto& [exporter, p] : taking)
            writing_[exporter] = p;
    }
    return write(db, taking);
}

void CursorMailbox::settle(bool committed)
{
    std::lock_guard lock(mutex_);
    if (!committed) {
        for (auto& [exporter, p] : writing_)
            posted_.try_emplace(exporter, std::move(p));  // a newer post stays
        if (!posted_.empty())
            pending_.store(true, std::memory_order_release);
    }
    writing_.clear();
}

Status CursorMailbox::close(Db* db)
{
    // The transaction first: an exporter refused by closed_ writes its position itself, and
    // that write must come after this one, not be overwritten by an older position.
    std::optional<Txn> txn;
    Status begun;
    if (db) {
        auto t = Txn::begin(*db);
        if (t)
            txn.emplace(std::move(*t));
        else
            begun = t.status();
    }
    Positions taking;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        taking.swap(posted_);
        writing_.clear();
        pending_.store(false, std::memory_order_release);
    }
    if (!txn || taking.empty())
        return begun;
    SLUICE_RETURN_IF_ERROR(write(*db, taking));
    return txn->commit();
}

}  // namespace sluice::store
