// process: running a job's command as a child in its own process group.
#pragma once

#include "queuectl/job.hpp"
#include "queuectl/sys.hpp"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace queuectl {

struct SpawnSpec {
  std::string command;            // run as /bin/sh -c command
  std::optional<std::string> cwd; // chdir there first
  Json env = Json::object();      // added to (or replacing in) the worker's environment
  int log_fd = -1;                // stdout and stderr (stdin is /dev/null)
  std::vector<int> keep_fds;      // inherited by the command (the job's locks)
};

// Starts the command (vfork + execve of /bin/sh) in a new process group (pgid = pid) with an empty
// signal mask (see sys::reset_ignored_signals for the dispositions). The calling process
// must have no signal handlers that could run in the vfork child before it execs (the
// worker handles signals through a signalfd). Returns it, to be reaped. Throws Error(failure)
// when it cannot start (e.g. cwd missing), with the reason.
sys::Child spawn_job(const SpawnSpec& spec);

// Maps a wait status to the job's exit_code: the exit status, or 128+N for signal N.
int exit_code_of(int wait_status);
// "exit status 3", "killed by signal 9 (SIGKILL)".
std::string describe_status(int wait_status);

} // namespace queuectl
