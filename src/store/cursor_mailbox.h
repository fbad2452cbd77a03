// Exporter cursors on their way into the database through the daemon's writer.
//
// An exporter that saved its cursor on a connection of its own would need SQLite's write lock,
// which the writer holds for nearly all of every second under load: the save waited in the busy
// handler for seconds, the exporter with it, and the export lag grew whatever the CPU. So the
// exporters post their positions here instead, and the writer, which holds the lock anyway,
// writes the newest position of each into the transaction of its next batch (or, when no batch
// comes for a while, into one of their own). A cursor may trail its sink (docs/exporters.md):
// one that is lost with a failed batch commit is corrected from the sink at the next start.
//
// A position is "newest" from its post until the transaction that writes it commits (newest()):
// an exporter that starts in the meantime (a reload replaced the one that posted it) takes it
// from here, not from the older row in the database.
//
// When the writer stops it writes what is left and closes the mailbox; from then on post()
// refuses, and the exporter saves on its own connection (nobody else writes any more).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/status.h"
#include "store/committed_reader.h"
#include "store/db.h"

namespace sluice::store {

class CursorMailbox {
public:
    // Any thread: `cursor` is the newest position of `exporter` (it replaces one not yet
    // written). False once the mailbox is closed: the caller saves it itself.
    bool post(const std::string& exporter, const ExportCursor& cursor, int64_t nowMs);
    bool pending() const { return pending_.load(std::memory_order_acquire); }
    // Any thread: the newest position posted for `exporter` that is not yet committed to the
    // database (posted, or in the writer's open transaction), if there is one.
    std::optional<ExportCursor> newest(const std::string& exporter) const;

    // The writer's thread, inside its transaction: writes what was posted. settle() must follow,
    // once the transaction committed (true) or was given up (false: the positions are posted
    // again, unless newer ones came meanwhile).
    Status writeTo(Db& db);
    void settle(bool committed);
    // The writer's thread, at its end, outside a transaction: writes what was posted, in a
    // transaction of its own (not when `db` is null: the writer stopped on a fault), and refuses
    // posts from then on.
    Status close(Db* db);

private:
    struct Posted {
        ExportCursor cursor;
        int64_t atMs = 0;
    };
    using Positions = std::map<std::string, Posted>;
    static Status write(Db& db, const Positions& positions);

    mutable std::mutex mutex_;
    Positions posted_;
    Positions writing_;  // taken by writeTo(), not yet settled
    bool closed_ = false;
    std::atomic<bool> pending_{false};
};

}  // namespace sluice::store
