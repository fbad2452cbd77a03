// sluiced's main body: opens and checks the database, loads the master key and the pipeline,
// starts the threads (ingest, processor + workers, writer), tells systemd when it is ready, and
// runs the main loop (signals, watchdog, status, metrics endpoint) until asked to stop.
//
//   SIGTERM, SIGINT  drain: stop reading, commit the open batch, acknowledge, exit 0
//   SIGHUP           reload contracts and pipelines; a bad configuration is refused, the old
//                    one keeps running
#pragma once

#include "config/config.h"

namespace sluice::service {

// Returns the process exit code (sysexits: 0, 69 unavailable, 70 software, 74 I/O, 78 config).
int runDaemon(const config::Config& config);

}  // namespace sluice::service
