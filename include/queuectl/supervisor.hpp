// supervisor: `worker start`, `worker stop`: a foreground parent of N worker processes.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/job.hpp"

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace queuectl {

class Spool;

// Runs N workers on the spool in the foreground until SIGTERM/SIGINT (graceful) or
// SIGUSR1 (stop now), replacing any worker that dies. When `ready_fd` >= 0, writes the
// supervisor's PID and then each worker's PID (one per line) to it once all are
// registered, and closes it; before them, while it reads a large spool for the workers,
// lines "reading N" (see start_detached). In the foreground, with standard error a
// terminal, that progress is drawn there instead. Returns the exit status (0 after a
// clean stop).
// `queues`: the queues its workers take (all when empty).
int run_supervisor(const std::filesystem::path& root, int count, int ready_fd,
                   const std::vector<std::string>& queues = {});

// Starts a supervisor in the background (new session, no inherited stdio) and returns
// its PID followed by its workers' PIDs once they are ready. Throws Error on failure.
// While the supervisor reads a large spool for its workers (over a second), `progress`
// hears how many waiting jobs it has read so far, a few times a second.
std::vector<pid_t> start_detached(const std::filesystem::path& root, int count,
                                  const std::vector<std::string>& queues = {},
                                  const std::function<void(std::size_t)>& progress = {});

// Cancels job `id` while it is in processing/ (SPEC section 5): asks for it
// (CancelRequest, renewed each second), which the worker that runs it sees; it ends its
// process group as a timeout does and moves it to dead/ "cancelled". The command of a job whose
// worker died gets SIGTERM, then SIGKILL after `grace`, from here, and the job is recovered
// as cancelled. Returns the state the job is in once it has left processing/: dead, or
// another when it finished first. Error(failure) when it is still there after a while.
JobState cancel_running(const Spool& spool, const std::string& id, Micros grace = 2'000'000);

// Asks every supervisor on the spool to stop (gracefully, or at once with `now`) and
// waits until all its supervisors and workers have exited. Returns how many processes
// were stopped (supervisors plus workers).
std::size_t stop_all(const Spool& spool, bool now);

} // namespace queuectl
