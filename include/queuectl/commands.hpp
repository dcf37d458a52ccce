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
  std::optional<std::string> queue;
  std::vector<std::string> after, tags;
  bool hold = false;
};

// An enqueue whose input has passed every check that needs no spool.
struct EnqueueRequest {
  JobOverrides overrides;
  Json base;                        // the JSON argument's object (null when none)
  std::optional<std::string> lines; // `enqueue -`: its input
  // `enqueue -`: hears how many jobs are written so far, of how many (see enqueue_lines).
  std::function<void(std::size_t done, std::size_t total)> progress;
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
// `list --queue --tag`: as list(), only the jobs of `queue` and with `tag` (when given).
// `text` (the API's search) keeps the jobs whose id, command or one of whose tags
// contains it, ignoring ASCII case.
struct JobFilter {
  std::optional<JobState> state;
  std::optional<std::string> queue, tag, text;
  std::size_t max = SIZE_MAX;
};
std::vector<StoredJob> list(const Spool& spool, const JobFilter& f);
// The jobs a pending or held job still waits for: those of its `after` not completed
// (a job purged after it finished counts as completed).
std::vector<std::string> waits_for(const Spool& spool, const StoredJob& sj);
// `list --json`, and the API's job lists: an array of the jobs as stored.
Json jobs_json(const std::vector<StoredJob>& jobs);
// `show`: the job as stored, its state from its directory. Error(failure) if unknown.
Json show(const Spool& spool, const std::string& id);
// The job's log; empty for a job without output yet. Error(failure) if unknown.
std::string log_text(const Spool& spool, const std::string& id);
// A part of the log, for a reader that follows it (the dashboard): the bytes from
// `from`, or only the last `tail` of them; `offset` is where `text` starts, `size` the
// log's length when read.
struct LogSlice {
  std::string text;
  std::uint64_t offset = 0, size = 0;
};
LogSlice log_slice(const Spool& spool, const std::string& id, std::uint64_t from, std::optional<std::uint64_t> tail);
// Pending, held or failed -> dead ("cancelled"); a processing job's command is ended
// first (see cancel_running), and this returns once it is in dead/. Error(failure) for a
// completed or dead job, or one that completed before its command could be ended.
void cancel(const Spool& spool, const std::string& id);
// Pending or failed -> held; held -> pending.
void hold(const Spool& spool, const std::string& id);
void release(const Spool& spool, const std::string& id);
// Completed or dead -> pending, attempts 0: run it again.
void retry(const Spool& spool, const std::string& id);
// Dead -> pending, attempts 0; the ids retried. `all`: every dead job but quarantine
// records (which cannot run as they are).
std::vector<std::string> retry_dead(const Spool& spool, const std::vector<std::string>& ids, bool all);
// Removes jobs of `s` (completed or dead) whose updated_at is older than `older_than`
// seconds (all when nullopt), with their logs and .orig files. How many.
std::size_t purge(const Spool& spool, JobState s, std::optional<double> older_than);
// `purge ID...`: removes one completed or dead job, with its log and .orig file.
// Error(failure) for an unknown job or one in another state (nothing changed).
void purge_job(const Spool& spool, const std::string& id);

// --- queues (cmd_queue.cpp) ---

// `queue list --json`: every queue that has jobs or settings, by name: counts per state,
// concurrency (null for none), paused.
Json queue_list(const Spool& spool);
// `queue set NAME --concurrency N` (n >= 1) / `queue unset NAME --concurrency` (nullopt).
void queue_concurrency(const Spool& spool, const std::string& name, std::optional<std::int64_t> n);
// `queue pause` / `queue resume`.
void queue_pause(const Spool& spool, const std::vector<std::string>& names, bool paused);
// Bad queue names are bad usage.
void check_queues(const std::vector<std::string>& names);

// --- wait (cmd_wait.cpp) ---

// `wait`: until every job of `ids` is completed or dead, or `timeout` seconds passed
// (none when nullopt). Error(failure) for an unknown id, before waiting. The exit status
// of SPEC section 7: 0 when all completed, the exit code (1-255) of the first listed job
// that is dead (1 when it has none), 124 on timeout (`unfinished` then names the jobs
// not finished).
int wait_jobs(const Spool& spool, const std::vector<std::string>& ids, std::optional<double> timeout,
              std::vector<std::string>* unfinished);

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
// `queues`: the queues its workers take (all when empty).
int start_workers(const Spool& spool, int count, const std::vector<std::string>& queues);
// `progress`: how many waiting jobs the supervisor has read so far, while that lasts.
std::vector<pid_t> start_workers_detached(const Spool& spool, int count, const std::vector<std::string>& queues,
                                          const std::function<void(std::size_t)>& progress = {});
// `worker stop`: how many processes were stopped.
std::size_t stop_workers(const Spool& spool, bool now);

} // namespace queuectl::cmd
