// commands: what queuectl does for a user, one function per command, shared by the two
// faces: the command line (cli.cpp) prints what they return, the HTTP API (server.cpp)
// serializes it. Everything that decides something lives here or below; the faces parse
// and present. Errors are Error with the exit code of SPEC section 5 (the API maps them
// to HTTP statuses).
#pragma once

#include "queuectl/enqueue.hpp"
#include "queuectl/job.hpp"
#include "queuectl/spool.hpp"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace queuectl::cmd {

// --- enqueue (cmd_enqueue.cpp) ---

// `enqueue` as it was asked, unchecked: the JSON argument ("-" for lines on standard
// input, empty for none) and the options given.
struct EnqueueArgs {
  std::string json;
  std::optional<std::string> command, id, run_at, cwd;
  std::optional<std::int64_t> priority, max_retries;
  std::optional<double> timeout, delay;
  std::vector<std::string> env; // NAME=VALUE
};

// An enqueue whose input has passed every check that needs no spool.
struct EnqueueRequest {
  JobOverrides overrides;
  Json base;                        // the JSON argument's object (null when none)
  std::optional<std::string> lines; // `enqueue -`: its input
};

// Checks the arguments (--run-at or --delay, --cwd made absolute, --env names, the id)
// and the input, reading it with `read_input` for `-`: Error(usage) naming what is
// wrong. With `new_spool`, every line of a bulk input is checked too, so that no spool is
// created for input that is refused (SPEC section 5).
EnqueueRequest prepare_enqueue(const EnqueueArgs& a, const std::function<std::string()>& read_input, bool new_spool);

// Enqueues what was prepared; the ids, in input order.
JobIds enqueue(Spool& spool, const EnqueueRequest& r);

// --- jobs (cmd_jobs.cpp) ---

// `status --json`: {"pending":N,...,"dead":N,"workers":N}.
Json status(const Spool& spool);
// `list`: the oldest `max` jobs of one state, or of every state.
std::vector<StoredJob> list(const Spool& spool, std::optional<JobState> state, std::size_t max);
// `list --json`, and the API's job lists: an array of the jobs as stored.
Json jobs_json(const std::vector<StoredJob>& jobs);
// `show`: the job as stored, its state from its directory. Error(failure) if unknown.
Json show(const Spool& spool, const std::string& id);
// The job's log; empty for a job without output yet. Error(failure) if unknown.
std::string log_text(const Spool& spool, const std::string& id);
// Pending or failed -> dead ("cancelled").
void cancel(const Spool& spool, const std::string& id);
// Dead -> pending, attempts 0; the ids retried. `all`: every dead job but quarantine
// records (which cannot run as they are).
std::vector<std::string> retry_dead(const Spool& spool, const std::vector<std::string>& ids, bool all);
// Removes jobs of `s` (completed or dead) whose updated_at is older than `older_than`
// seconds (all when nullopt), with their logs and .orig files. How many.
std::size_t purge(const Spool& spool, JobState s, std::optional<double> older_than);

// --- config (cmd_config.cpp) ---

std::vector<std::pair<std::string, Json>> config_list(const Spool& spool);
Json config_get(const Spool& spool, const std::string& key);
void config_set(const Spool& spool, const std::string& key, const std::string& value);
// False when nothing was set.
bool config_unset(const Spool& spool, const std::string& key);
// Checks a key, and a value for it when given, without a spool: Error(usage).
void check_config(const std::string& key, const std::optional<std::string>& value);

// --- workers (cmd_worker.cpp) ---

// `worker status --json`: [{"pid":N,"supervisor":N,"since":TIME,"job":ID or null}, ...].
Json worker_status(const Spool& spool);
// `worker start`: in the foreground until stopped (its exit status), or `--detach`ed:
// the supervisor's PID, then its workers'.
int start_workers(const Spool& spool, int count);
std::vector<pid_t> start_workers_detached(const Spool& spool, int count);
// `worker stop`: how many processes were stopped.
std::size_t stop_workers(const Spool& spool, bool now);

} // namespace queuectl::cmd
