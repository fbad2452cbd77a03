// Exporter cursors on their way into the database through the daemon's writer.
//
// An exporter that saved its cursor on a connection of its own would need SQLite's write lock,
// which the writer holds for nearly all of every second under load: the save waited in the busy
// handler for seconds, the exporter with it, and the export lag grew whatever the CPU. So the
// exporters post their positions here instead, and the writer, which holds the lock anyway,
// writes the newest position of each into the transaction of its next batch (or, when no batch
// comes for a while, into one of their own). A cursor may trail its sink (docs/exporters.md):
// one that is posted and lost with a failed commit is corrected from the sink at the next start.
//
// When the writer stops it writes what is left and closes the mailbox; from then on post()
// refuses, and the exporter saves on its own connection (nobody else writes any more).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
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

    // The writer's thread, inside a transaction: writes what was posted.
    Status writeTo(Db& db);
    // The writer's thread, at its end, outside a transaction: writes what was posted, in a
    // transaction of its own (not when `db` is null: the writer stopped on a fault), and refuses
    // posts from then on.
    Status close(Db* db);

private:
    struct Posted {
        ExportCursor cursor;
        int64_t atMs = 0;
    };
    Status write(Db& db, std::map<std::string, Posted>& posted);

    std::mutex mutex_;
    std::map<std::string, Posted> posted_;
    bool closed_ = false;
    std::atomic<bool> pending_{false};
};

}  // namespace sluice::store
