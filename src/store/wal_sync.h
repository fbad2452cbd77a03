// Makes what the writer committed durable, from a thread other than the writer's.
//
// A writer opened with syncEveryCommit = false commits with synchronous=NORMAL: its
// COMMIT writes the transaction's WAL frames and returns without waiting for the disk, so that
// the writer can go on with the next batch while the disk works. Nothing of such a commit may be
// acknowledged, exported or otherwise announced before sync() has returned after the COMMIT
// did. sync() is an fdatasync of the WAL file: what synchronous=FULL does inside every COMMIT,
// and one sync covers every commit that returned before it began (group commit). A machine
// crash before the sync may lose commits nobody was told of; SQLite recovers the WAL up to its
// last complete commit, as after a crash with FULL.
//
// Thread-safe for one caller at a time (the daemon's sync thread). The WAL file lives as long as
// the writer's connection: SQLite deletes it only when the last connection closes.
#pragma once

#include <string>

#include "core/status.h"

namespace sluice::store {

class WalSync {
public:
    explicit WalSync(const std::string& databasePath);
    ~WalSync();
    WalSync(const WalSync&) = delete;
    WalSync& operator=(const WalSync&) = delete;

    // Returns once every commit that returned before the call is on disk. The WAL file is opened
    // on first use (it exists once the writer has committed anything).
    Status sync();

private:
    std::string walPath_;
    int fd_ = -1;
};

}  // namespace sluice::store
