// worker: one worker process: waits for due jobs (inotify + timers), claims one at a
// time, runs it, records the outcome, and recovers jobs of dead workers.
#pragma once

#include "queuectl/job_index.hpp"

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string_view>

namespace queuectl {

// Where a worker reports what an operator should see (failures, recoveries, errors).
using LogSink = std::function<void(std::string_view line)>;

// Runs a worker on the spool until SIGTERM, SIGINT or SIGHUP (finish the running job,
// then return 0) or SIGUSR1 (kill the running job's process group, record the run as
// failed, return 0). Those signals must be blocked by the caller (they are read from a
// signalfd). Writes one byte to `ready_fd` (if >= 0) and closes it once the worker is
// registered, has recovered abandoned jobs and indexed the waiting ones: those of
// `snapshot` (its supervisor's, inherited through fork; or empty) and any others.
// Throws Error when the spool cannot be used.
int run_worker(const std::filesystem::path& root, pid_t supervisor, IndexSnapshot snapshot, int ready_fd,
               const LogSink& log);

} // namespace queuectl
