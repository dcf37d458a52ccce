// worker: one worker process: waits for due jobs (inotify + timers), claims one at a
// time, runs it, records the outcome, and recovers jobs of dead workers.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/committer.hpp"
#include "queuectl/config.hpp"
#include "queuectl/counters.hpp"
#include "queuectl/job_index.hpp"
#include "queuectl/lock_waiters.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/slots.hpp"
#include "queuectl/sys.hpp"
#include "queuectl/transition.hpp"
#include "queuectl/watch.hpp"

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace queuectl {

class Spool;

struct WorkerTimes {
  Micros kill_grace = 2'000'000;    // SIGTERM -> SIGKILL of a job's process group
  Micros recover_every = 4'000'000; // backstop: abandoned jobs are found within 5 s
  Micros rescan_every = 60'000'000; // backstop in case inotify missed something
  Micros sweep_every = 60'000'000;  // leftovers of dead processes in tmp/
  // A run's start is written into the job file only once the run has lasted this long: a
  // shorter run's outcome is written instead (see Transitions::claim).
  Micros record_start_after = 50'000;
  CommitGrouping grouping;
  std::size_t index_capacity = k_index_capacity; // waiting jobs kept in memory (see job_index.hpp)
};

// A job's command while it runs: its process group, and the clock that ends it. Its
// timeout, or `worker stop --now`, sends the group SIGTERM, and SIGKILL `grace` later if
// anything of it is left; the run's result says which ended it.
class RunningJob {
public:
  // `timeout` in seconds, 0 for none.
  RunningJob(Claimed claim, sys::Child child, Micros started, double timeout, Micros grace);

  // Sends what is due at `now`: SIGTERM at the deadline, SIGKILL after the grace.
  void tick(Micros now);
  // When tick() next has something to do (nullopt: nothing).
  std::optional<Micros> next_tick() const;
  // SIGTERM now (once), SIGKILL after the grace.
  void stop_now(Micros now);
  // The same, for `cancel`: the run is recorded as cancelled (dead/, no retry).
  void cancel(Micros now);
  bool cancelling() const { return m_cancelled; }
  // Its wait status, once the command has exited.
  std::optional<int> try_reap() { return m_child.try_reap(); }
  // What the run's end means for the job: the exit code, and the error ("" for success).
  RunResult result(int wait_status) const;

  Claimed& claim() { return m_claim; }
  const Claimed& claim() const { return m_claim; }
  Micros started() const { return m_started; }

private:
  void terminate(Micros now);

  Claimed m_claim;
  sys::Child m_child;
  Micros m_started;
  Micros m_deadline; // 0: no timeout
  Micros m_grace;
  Micros m_kill_at = 0; // SIGKILL the group at this time (after SIGTERM)
  bool m_timed_out = false;
  bool m_stopped = false;
  bool m_cancelled = false;
};

// The waiting jobs as a supervisor scans them once for all the workers it starts (see
// Supervisor::run): `file` holds JobIndex::save's text once `go` is at its end. A worker
// signals that its inotify watch is set before it waits on `go`, and the supervisor scans
// only then, so no job that arrives meanwhile is missed.
struct IndexHandOver {
  Fd go;   // the read end of a pipe, closed by the supervisor when `file` is written
  Fd file; // unnamed, in tmp/
};

// One worker. The caller must block SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1 and SIGUSR2 (they
// are read from a signalfd) and have no signal handlers (see spawn_job).
//
// Queues (SPEC section 7): a worker takes the jobs of `queues` (all when empty), skips
// those of a paused queue, and takes a slot (slots.hpp) before it claims a job of a
// queue with a concurrency limit. It re-reads the settings when config.json changes. A
// job whose `after` lists a job not yet completed stays in the index, skipped, until
// that job arrives in done/ or dead/ (inotify): then it is claimed, or, when the job it
// waits for is dead, moved to dead/ itself, which wakes the jobs waiting on it in turn.
class Worker {
public:
  Worker(Spool& spool, pid_t supervisor, const LogSink& log, WorkerTimes times = {},
         std::vector<std::string> queues = {});

  // Runs until SIGTERM, SIGINT or SIGHUP (finish the running job, then return 0) or
  // SIGUSR1 (end the running job's process group, record the run as failed, return 0).
  // SIGUSR2: `cancel` asks for the running job to be ended (see CancelRequest).
  // Writes one byte to `ready_fd` (if >= 0) and closes it once the worker is registered,
  // has recovered abandoned jobs and scanned the waiting ones (or, with `handed`,
  // loaded the supervisor's scan: it writes a first byte once its watch is set, before it
  // waits for the scan).
  int run(int ready_fd, std::optional<IndexHandOver> handed = std::nullopt);

private:
  void setup_events();
  void index_file(JobState s, std::string_view name);
  void drain_inotify();
  void drain_signals();
  // Ends the running job as cancelled if `cancel` asked for it (workers/cancel-<id>).
  void cancel_if_requested();
  void start_next(Micros now);
  void launch(Claimed c, Micros now);
  void finish(int status, Micros now);
  void conclude(Claimed c, const RunResult& r, Micros now, std::optional<double> seconds = std::nullopt);
  void record_start();
  void recover();
  void recover_released();
  void sweep();
  void rescan(Micros now);
  bool rescan_past_skipped(Micros now, const std::vector<std::string>& full);
  // Whether this worker takes jobs of `queue` ("" for "default"), and whether it is paused.
  bool serves(const std::string& queue) const;
  const QueueSettings& settings_of(const std::string& queue) const;
  void refresh_queues();
  bool accepts(const IndexEntry& e) const { return serves(e.queue) && !settings_of(e.queue).paused; }
  void watch_finished();
  void finished_job(std::string_view name);
  bool load_handed(int ready_fd, IndexHandOver handed);
  void append_log(int fd, const std::string& text);
  int poll_timeout(Micros now) const;
  const Config& config() { return m_config.get(m_spool.root_dir()); }

  Spool& m_spool;
  const LogSink& m_log;
  const WorkerTimes m_times;
  Registration m_reg;
  Transitions m_tx;
  Counters m_counters; // this thread's (the committer has its own)
  JobIndex m_index{m_times.index_capacity};
  LockWaiters m_waiters;
  std::unique_ptr<Watch> m_watch;
  std::optional<sys::SignalFd> m_signals;
  int m_wd_pending = -1;
  int m_wd_failed = -1;
  int m_wd_root = -1;
  int m_wd_done = -1; // done/ and dead/: watched once a job with `after` is seen
  int m_wd_dead = -1;
  int m_wd_slots = -1;
  int m_wd_workers = -1;
  std::vector<std::string> m_queues;
  QueueSlots m_slots;
  std::map<std::string, QueueSettings> m_queue_settings;
  bool m_queues_stale = true;
  // A slot's IN_CLOSE comes a moment before the kernel drops its lock (fsnotify_close runs
  // before locks_remove_file): after one, a queue found full is tried again a few times,
  // 1, 2, 4 ... ms later.
  int m_slot_retries = 0;
  Micros m_slot_retry_delay = 0;
  Micros m_slot_retry_at = 0;                                             // 0: none
  std::unordered_map<std::string, int> m_busy;                            // id -> claims that found it locked, in a row
  std::unordered_map<std::string, std::string> m_blocked;                 // id -> the job it waits for
  std::unordered_map<std::string, std::vector<std::string>> m_dependents; // that job -> ids
  std::optional<RunningJob> m_run;
  bool m_stopping = false;
  bool m_rescan = false;
  bool m_old_temps_swept = false;
  Micros m_next_recover = 0;
  Micros m_next_rescan = 0;
  Micros m_next_sweep = 0;
  Micros m_next_starved_scan = 0;
  std::int64_t m_default_priority = 0;
  pid_t m_pid;
  ConfigCache m_config;
  Committer m_committer; // last: joined before the rest is destroyed
};

// A worker process's main: `Worker(...).run(...)` on the spool at `root`, after setting
// the signal dispositions a worker needs. Throws Error when the spool cannot be used.
int run_worker(const std::filesystem::path& root, pid_t supervisor, int ready_fd, std::optional<IndexHandOver> handed,
               const LogSink& log, const std::vector<std::string>& queues = {});

} // namespace queuectl
