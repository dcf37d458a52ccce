#include "queuectl/supervisor.hpp"

#include "queuectl/error.hpp"
#include "queuectl/helpers.hpp"
#include "queuectl/job_index.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/say.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"
#include "queuectl/transition.hpp"
#include "queuectl/version.hpp"
#include "queuectl/watch.hpp"
#include "queuectl/worker.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <set>

namespace queuectl {

namespace {

constexpr int k_max_fast_failures = 5;         // a worker dying this often at start: give up
constexpr Micros k_fast_failure = 1'000'000;   // "at start": within a second
constexpr Micros k_status_period = 10'000'000; // STATUS= for systemctl status

constexpr std::initializer_list<int> k_signals = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2};

void log_line(std::string_view line) {
  say(line);
}

class Supervisor {
public:
  Supervisor(const std::filesystem::path& root, int count, std::vector<std::string> queues)
      : m_root(root), m_spool(Spool::open(root)), m_count(count), m_queues(std::move(queues)),
        m_reg(m_spool, RecordKind::supervisor, 0, count) {}

  int run(int ready_fd);

private:
  pid_t spawn_worker(int ready_fd, bool handed = false);
  void start_intake();
  int poll_timeout() const;
  Micros tell_period() const; // between two WATCHDOG=1 or STATUS=
  void tell_systemd();
  void hand_over_scan(std::vector<Fd>& ready);
  void reap();
  void stop_workers(int sig);

  std::filesystem::path m_root;
  Spool m_spool;
  int m_count;
  std::vector<std::string> m_queues; // its workers take these (all when empty)
  Registration m_reg;
  std::map<pid_t, Micros> m_workers; // pid -> start time
  bool m_stopping = false;
  bool m_interrupted = false; // stopping after a Ctrl-C: a second one forces
  bool m_listens = sys::systemd_listens();
  Micros m_watchdog = sys::watchdog_period();
  Micros m_last_told = 0;   // the last WATCHDOG=1 or STATUS= (monotonic)
  Micros m_last_status = 0; // the last STATUS=
  int m_fast_failures = 0;
  int m_exit = 0;
  Fd m_ready_fd;                         // the caller's readiness pipe; workers must not inherit it
  bool m_progress_on_tty = false;        // the first scan's progress drawn on our standard error
  std::optional<IndexHandOver> m_handed; // for the first workers (see hand_over_scan)
  Fd m_go;                               // its pipe's write end: closed once the scan is written
  pid_t m_intake = 0;                    // the cluster's intake (SPEC section 8), when the spool joined one
  Micros m_intake_due = 0;               // (monotonic) when to start it again after it exited
};

// The intake runs in queuectl-cluster, which links the NATS client that this binary
// never loads. It dies with us.
void Supervisor::start_intake() {
  m_intake_due = 0;
  const auto helper = find_helper("queuectl-cluster", k_cluster_helper);
  if (!helper) {
    log_line(fmt::format("the spool has joined a cluster, but '{}' is not installed: no jobs are taken from it",
                         installed_helper(k_cluster_helper).string()));
    return;
  }
  const pid_t sup = sys::own_pid();
  const pid_t pid = sys::fork_process("the cluster's intake");
  if (pid == 0) {
    m_reg.abandon();
    m_ready_fd.reset();
    m_go.reset();
    sys::die_with_parent(SIGTERM);
    if (sys::parent_pid() != sup) {
      sys::exit_now(0);
    }
    std::string arg0 = "queuectl-cluster", arg1 = "--intake", arg2 = m_root.string();
    char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
    try {
      sys::exec(*helper, argv);
    } catch (const std::exception& e) {
      log_line(fmt::format("cannot start the cluster's intake: {}", e.what()));
    }
    sys::exit_now(127);
  }
  m_intake = pid;
}

// poll(2)'s timeout: until the intake is due to start again, or none.
int Supervisor::poll_timeout() const {
  Micros next = m_intake_due;
  if (m_listens) {
    const Micros tick = m_last_told + tell_period();
    next = next == 0 ? tick : std::min(next, tick);
  }
  if (next == 0) {
    return -1;
  }
  return static_cast<int>(std::max<Micros>(0, next - monotonic_micros()) / 1000 + 1);
}

// Under systemd: WATCHDOG=1 at half the watchdog period (the loop turning is the proof
// of life), and STATUS= with the workers and the counts of the waiting states, which
// `systemctl status` shows.
Micros Supervisor::tell_period() const {
  return m_watchdog > 0 ? std::min(m_watchdog / 2, k_status_period) : k_status_period;
}

void Supervisor::tell_systemd() {
  const Micros now = monotonic_micros();
  if (!m_listens || now - m_last_told < tell_period()) {
    return;
  }
  m_last_told = now;
  if (m_watchdog > 0) {
    sys::notify_systemd("WATCHDOG=1"); // first, and alone: counting below may take a while
  }
  if (now - m_last_status >= k_status_period) {
    m_last_status = now;
    std::string state;
    try {
      // The waiting states only: done/ and dead/ grow without bound.
      const auto of = [&](JobState s) { return m_spool.count(s); };
      state = fmt::format("STATUS={} worker{} running; {} pending, {} processing, {} failed, {} held", m_workers.size(),
                          m_workers.size() == 1 ? "" : "s", of(JobState::pending), of(JobState::processing),
                          of(JobState::failed), of(JobState::held));
    } catch (const Error&) {
      state = fmt::format("STATUS={} workers running", m_workers.size());
    }
    sys::notify_systemd(state.c_str());
  }
}

pid_t Supervisor::spawn_worker(int ready_fd, bool handed) {
  const pid_t sup = sys::own_pid();
  const pid_t pid = sys::fork_process(m_root.string());
  if (pid == 0) {
    m_reg.abandon();    // the supervisor's record is not ours to hold or remove
    m_ready_fd.reset(); // else `worker start --detach` would wait for our exit
    sys::die_with_parent(SIGTERM);
    if (sys::parent_pid() != sup) {
      sys::exit_now(0); // the supervisor died while we were starting
    }
    int rc = 1;
    try {
      m_go.reset(); // the workers wait for its end
      std::optional<IndexHandOver> mine;
      if (handed && m_handed) {
        mine = std::move(m_handed);
      }
      m_handed.reset();
      rc = run_worker(m_root, sup, ready_fd, std::move(mine), log_line, m_queues);
    } catch (const std::exception& e) {
      log_line(fmt::format("worker error: {}", e.what()));
    }
    sys::exit_now(rc);
  }
  m_workers[pid] = now_micros();
  return pid;
}

void Supervisor::stop_workers(int sig) {
  for (const auto& [pid, since] : m_workers) {
    sys::send_signal(pid, sig);
  }
  if (m_intake) {
    sys::send_signal(m_intake, SIGTERM); // it takes no more jobs; those it took are here
  }
  m_intake_due = 0;
}

void Supervisor::reap() {
  while (const auto child = sys::reap_any()) {
    const pid_t pid = child->pid;
    const int status = child->status;
    if (pid == m_intake) {
      m_intake = 0;
      if (!m_stopping) {
        log_line(fmt::format("the cluster's intake {}; starting it again in 5 s",
                             WIFSIGNALED(status) ? fmt::format("was killed by signal {}", WTERMSIG(status))
                                                 : fmt::format("exited with status {}", WEXITSTATUS(status))));
        m_intake_due = monotonic_micros() + 5'000'000;
      }
      continue;
    }
    const auto it = m_workers.find(pid);
    if (it == m_workers.end()) {
      continue;
    }
    const Micros started = it->second;
    m_workers.erase(it);
    if (m_stopping) {
      continue;
    }
    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    log_line(fmt::format("worker {} {}; starting a new one", pid,
                         WIFSIGNALED(status) ? fmt::format("was killed by signal {}", WTERMSIG(status))
                                             : fmt::format("exited with status {}", WEXITSTATUS(status))));
    if (!clean && now_micros() - started < k_fast_failure) {
      if (++m_fast_failures >= k_max_fast_failures) {
        log_line("workers keep failing at start; stopping (see the errors above)");
        m_exit = 1;
        m_stopping = true;
        stop_workers(SIGTERM);
        continue;
      }
    } else {
      m_fast_failures = 0;
    }
    spawn_worker(-1);
  }
}

// Waits until every first worker's watch is set (its first byte), scans the waiting
// jobs once for all of them, and lets them go. With a million waiting, the listing of
// pending/ is most of a scan's time, and two workers listing it at once take twice as
// long as one. Should the scan fail, the workers find nothing to load and scan for
// themselves.
void Supervisor::hand_over_scan(std::vector<Fd>& ready) {
  for (Fd& rd : ready) {
    (void)sys::read_some(rd.get(), 1, "a worker's readiness pipe"); // "w", or its end if it died
  }
  try {
    std::string text;
    {
      JobIndex index;
      const Config cfg = m_spool.load_config();
      // Reading a large spool outlasts systemd's start timeout: it is extended as it goes.
      // Past its first second, the one who started us hears how far it is. (It is told
      // from several threads: one at a time tells.)
      const Micros start = monotonic_micros();
      Micros extended = start;
      Micros told = start;
      bool drawn = false;
      std::mutex telling;
      const auto progress = [&](std::size_t n) {
        const std::unique_lock<std::mutex> one(telling, std::try_to_lock);
        const Micros t = monotonic_micros();
        if (!one.owns_lock()) {
          return;
        }
        if (m_listens && t - extended >= 5'000'000) {
          extended = t;
          sys::notify_systemd(
              fmt::format("EXTEND_TIMEOUT_USEC=30000000\nSTATUS=reading the waiting jobs: {} so far", n).c_str());
        }
        if (t - start >= 1'000'000 && t - told >= 200'000) {
          told = t;
          if (m_ready_fd) {
            try {
              sys::write_all(m_ready_fd.get(), fmt::format("reading {}\n", n), "the starter's readiness pipe");
            } catch (const Error&) {
              // the starter is gone (Ctrl-C): the scan goes on for the workers
            }
          } else if (m_progress_on_tty) {
            try {
              sys::write_all(STDERR_FILENO,
                             fmt::format("\r\033[Kqueuectl: worker start: reading the waiting jobs: {} so far", n),
                             "standard error");
              drawn = true;
            } catch (const Error&) {
              m_progress_on_tty = false; // the terminal hung up: the scan goes on
            }
          }
        }
      };
      // The workers' queues. Paused queues are kept (the workers skip their jobs): a
      // queue resumed before a worker has loaded this scan must find its jobs there.
      const auto accept = [&](const IndexEntry& e) {
        const std::string q = e.queue.empty() ? std::string(k_default_queue) : e.queue;
        return m_queues.empty() || std::find(m_queues.begin(), m_queues.end(), q) != m_queues.end();
      };
      scan_waiting(m_spool, cfg.job_defaults().priority, now_micros(), index, accept, progress);
      if (drawn && m_progress_on_tty) {
        try {
          sys::write_all(STDERR_FILENO, "\r\033[K", "standard error");
        } catch (const Error&) {
        }
      }
      index.save(text);
    }
    sys::write_all_at(m_handed->file.get(), text, 0, "the workers' scan");
  } catch (const Error& e) {
    log_line(fmt::format("cannot scan the waiting jobs for the workers: {}", e.what()));
  }
  m_go.reset();
  m_handed.reset();
  sys::release_free_memory();
}

int Supervisor::run(int ready_fd) {
  sys::SignalFd signals(k_signals);
  m_ready_fd = Fd(ready_fd);
  // The config is read here first so that a broken one is one error, not a worker dying
  // at every start.
  (void)m_spool.load_config();
  // QUEUECTL_WATCH too (a wrong value is one error here); a poll asked for is said once,
  // here, while each worker says why the kernel gave it no inotify, should that happen.
  if (const auto probe = Watch::open(); probe->polling() == k_poll_asked) {
    log_line(fmt::format("watching the spool by looking every {} ms ({})", k_poll_period / 1000, k_poll_asked));
  }
  // The first workers share one scan of the waiting jobs, made here once their inotify
  // watches are set (see hand_over_scan), a single first worker too, so that the scan's
  // progress can be told; a worker started later scans the spool itself.
  m_progress_on_tty = !m_ready_fd && sys::is_terminal(STDERR_FILENO);
  if (Fd file = m_spool.tmp().create_unnamed(m_spool.file_mode())) {
    auto [rd, wr] = sys::make_pipe("the workers' start");
    m_handed = IndexHandOver{std::move(rd), std::move(file)};
    m_go = std::move(wr);
  }
  // Each worker says it is ready through its own pipe.
  std::vector<Fd> ready;
  for (int i = 0; i < m_count; ++i) {
    auto [rd, wr] = sys::make_pipe("a worker's readiness");
    spawn_worker(wr.get(), m_handed.has_value()); // our copy of the write end closes here
    ready.push_back(std::move(rd));
  }
  if (m_handed) {
    hand_over_scan(ready);
  }
  for (Fd& rd : ready) {
    sys::read_some(rd.get(), 1, "a worker's readiness pipe"); // its byte, or its end if it died
  }
  if (m_ready_fd) {
    std::string text = fmt::format("{}\n", sys::own_pid());
    for (const auto& [pid, since] : m_workers) {
      text += fmt::format("{}\n", pid);
    }
    sys::write_all(m_ready_fd.get(), text, "the starter's readiness pipe");
    m_ready_fd.reset();
  }
  if (m_spool.load_config().cluster()) {
    if (m_queues.empty()) {
      start_intake();
    } else {
      log_line("the spool has joined a cluster, but these workers serve only some queues: they take no jobs from "
               "it (a supervisor of all queues does)");
    }
  }
  sys::notify_systemd("READY=1");
  tell_systemd();
  log_line(fmt::format("{} worker{} running on {}; stop with Ctrl-C or 'queuectl worker stop'", m_count,
                       m_count == 1 ? "" : "s", m_root.string()));
  while (!m_workers.empty() || m_intake) {
    pollfd pfd{signals.fd(), POLLIN, 0};
    sys::poll(&pfd, 1, poll_timeout());
    tell_systemd();
    if (m_intake_due != 0 && monotonic_micros() >= m_intake_due && !m_stopping) {
      start_intake();
    }
    while (const auto sig = signals.next()) {
      if (*sig == SIGCHLD) {
        reap();
      } else if (*sig == SIGUSR2) {
        // blocked only so that it cannot end us: a `cancel` of an earlier version signals
        // workers
      } else if (*sig == SIGUSR1 || (*sig == SIGINT && m_interrupted)) {
        // `worker stop --now`, or a second Ctrl-C: the convention is that it forces
        m_stopping = true;
        sys::notify_systemd("STOPPING=1");
        log_line("stopping now: running jobs are killed and count as failed attempts");
        stop_workers(SIGUSR1);
      } else if (!m_stopping) {
        m_stopping = true;
        m_interrupted = *sig == SIGINT;
        sys::notify_systemd("STOPPING=1");
        log_line(m_interrupted ? "stopping: running jobs finish first (Ctrl-C again to kill them now)"
                               : "stopping: running jobs finish first");
        stop_workers(SIGTERM);
      }
    }
  }
  log_line("stopped");
  return m_exit;
}

} // namespace

int run_supervisor(const std::filesystem::path& root, int count, int ready_fd, const std::vector<std::string>& queues) {
  // Descriptors we inherited (a terminal's, a CI runner's pipes) must not reach jobs.
  sys::close_inherited_fds();
  sigset_t old;
  sys::block_signals(sys::signal_set(k_signals), &old); // before any thread or child exists
  // A starter gone (Ctrl-C on `worker start --detach`) must give EPIPE, not kill us.
  sys::block_signals(sys::signal_set({SIGPIPE}));
  Supervisor s(root, count, queues);
  const int rc = s.run(ready_fd);
  sys::set_signal_mask(old);
  return rc;
}

std::vector<pid_t> start_detached(const std::filesystem::path& root, int count, const std::vector<std::string>& queues,
                                  const std::function<void(std::size_t)>& progress) {
  Spool spool = Spool::open(root); // fail here, in the foreground, if the spool is unusable
  (void)spool.load_config();       // or its config broken
  (void)Watch::open();             // or QUEUECTL_WATCH wrong
  auto [rd, wr] = sys::make_pipe("worker start --detach");
  const std::string log_path = spool.path_of("workers", "detached.log");
  const pid_t pid = sys::fork_process(root.string());
  if (pid == 0) {
    rd.reset();
    sys::new_session();
    const Fd log = spool.workers().try_open("detached.log", O_WRONLY | O_CREAT | O_APPEND, 0600);
    sys::redirect_stdio(sys::dev_null(), sys::dev_null(), log ? log.get() : sys::dev_null());
    int rc = 1;
    try {
      rc = run_supervisor(root, count, wr.release(), queues);
    } catch (const std::exception& e) {
      log_line(fmt::format("error: {}", e.what()));
    }
    sys::exit_now(rc);
  }
  wr.reset();
  // "reading N" lines while the supervisor reads the spool, then one PID per line.
  std::vector<pid_t> pids;
  std::string text;
  for (std::string more; !(more = sys::read_some(rd.get(), 4096, "supervisor pipe")).empty();) {
    text += more;
    std::size_t pos = 0;
    for (std::size_t nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      const std::string line = text.substr(pos, nl - pos);
      if (line.rfind("reading ", 0) == 0) {
        if (progress) {
          progress(static_cast<std::size_t>(std::atoll(line.c_str() + 8)));
        }
      } else {
        pids.push_back(static_cast<pid_t>(std::atol(line.c_str())));
      }
    }
    text.erase(0, pos);
  }
  if (pids.size() != static_cast<std::size_t>(count) + 1) {
    fail(fmt::format("the supervisor exited before its workers were ready; see '{}'", log_path));
  }
  return pids;
}

namespace {

// The commands of jobs whose worker died run on, holding their job's lock: `worker stop
// --now` ends them like the running ones (SIGTERM to their process groups, SIGKILL after
// a grace) and records each run as a failed attempt. Their holders are found through
// /proc; the lock is the proof that a process still runs the job.
void end_orphans(const Spool& spool) {
  const std::string reason = "stopped by 'queuectl worker stop --now'";
  Transitions tx(spool);
  std::vector<std::string> held;
  tx.recover("worker died", &held);
  std::set<pid_t> groups;
  for (const std::string& id : held) {
    const auto st = spool.stat_job(JobState::processing, id);
    for (pid_t pid : st ? sys::pids_locking(st->st_dev, st->st_ino) : std::vector<pid_t>()) {
      if (const pid_t pgid = sys::process_group(pid); pgid > 1 && pgid != sys::own_process_group()) {
        groups.insert(pgid);
      }
    }
  }
  for (pid_t g : groups) {
    sys::signal_group(g, SIGTERM);
  }
  const Micros kill_at = now_micros() + 2'000'000;
  const Micros give_up = kill_at + 5'000'000;
  bool killed = false;
  while (!held.empty() && now_micros() < give_up) {
    if (!killed && now_micros() >= kill_at) {
      for (pid_t g : groups) {
        sys::signal_group(g, SIGKILL);
      }
      killed = true;
    }
    std::vector<std::string> still;
    for (const std::string& id : held) {
      bool busy = false;
      if (auto l = spool.lock_job(JobState::processing, id, &busy)) {
        tx.recover_locked(std::move(*l), reason);
      } else if (busy) {
        still.push_back(id);
      }
    }
    held.swap(still);
    if (!held.empty()) {
      sys::sleep_for(10'000); // the commands are exiting: a lock has no wait with a deadline
    }
  }
}

} // namespace

JobState cancel_running(const Spool& spool, const std::string& id, Micros grace) {
  const sys::HeldInterrupts held; // Ctrl-C here must not leave the request behind
  const CancelRequest request(spool, id);
  const Micros start = now_micros();
  const Micros orphan_after = start + 1'000'000; // a worker records its job just after the claim
  const Micros give_up = start + grace + 10'000'000;
  Micros renewed = now_micros();
  Micros kill_at = 0;
  for (;;) {
    const auto st = spool.locate(id);
    if (!st) {
      throw NotFound(fmt::format("no such job '{}'", id));
    }
    if (*st != JobState::processing) {
      return *st;
    }
    if (sys::interrupt_pending()) {
      fail(fmt::format("interrupted while job '{}' was being cancelled; it may still be", id));
    }
    const Micros now = now_micros();
    if (now >= give_up) {
      fail(fmt::format("job '{}' is still running {:.0f} s after it was cancelled; its worker may be of an "
                       "earlier queuectl that does not look for cancel requests (restart the workers), see "
                       "'queuectl worker status'",
                       id, static_cast<double>(now - start) / 1e6));
    }
    const auto records = live_records(spool);
    const auto runner =
        std::find_if(records.begin(), records.end(), [&](const WorkerInfo& w) { return w.job && *w.job == id; });
    if (now - renewed >= 1'000'000) { // a live request: renewed while this waits
      request.renew();
      renewed = now;
    }
    if (runner != records.end()) {
      // its worker sees the request (and sees it again when renewed, should it have been
      // starting the job when it came)
    } else if (now >= orphan_after) {
      // No worker runs it: its worker died, and its command may still hold the lock.
      bool busy = false;
      if (auto l = spool.lock_job(JobState::processing, id, &busy)) {
        Transitions(spool).recover_locked(std::move(*l), "cancelled");
        continue;
      }
      const auto jst = spool.stat_job(JobState::processing, id);
      if (busy && jst && (kill_at == 0 || now >= kill_at)) {
        std::set<pid_t> ours{sys::own_process_group()};
        for (const WorkerInfo& w : records) {
          ours.insert(sys::process_group(w.pid)); // never a worker's or supervisor's group
        }
        for (pid_t pid : sys::pids_locking(jst->st_dev, jst->st_ino)) {
          if (const pid_t g = sys::process_group(pid); g > 1 && !ours.count(g)) {
            if (sys::signal_group(g, kill_at == 0 ? SIGTERM : SIGKILL) == sys::Sent::denied) {
              fail(fmt::format("cannot cancel job '{}': its worker died, and its command (process group {}) "
                               "belongs to another user; a worker of that user recovers it once the command ends",
                               id, g));
            }
          }
        }
        kill_at = kill_at == 0 ? now + grace : std::numeric_limits<Micros>::max();
      }
    }
    sys::sleep_for(20'000); // a rare command that waits on other processes' exits
  }
}

std::size_t stop_all(const Spool& spool, bool now) {
  const int sig = now ? SIGUSR1 : SIGTERM;
  const auto recs = live_records(spool);
  const auto signal = [&](pid_t pid) {
    if (sys::send_signal(pid, sig) == sys::Sent::denied) {
      fail(fmt::format("cannot stop worker process {}: it belongs to another user (a service? "
                       "try: systemctl stop queuectl)",
                       pid));
    }
  };
  std::map<pid_t, bool> supervisors;
  for (const WorkerInfo& w : recs) {
    if (w.kind == RecordKind::supervisor) {
      supervisors[w.pid] = true;
      signal(w.pid);
    }
  }
  std::size_t workers = 0;
  for (const WorkerInfo& w : recs) {
    if (w.kind == RecordKind::worker) {
      ++workers;
      if (!supervisors.count(w.supervisor)) {
        signal(w.pid); // an orphan whose supervisor is gone
      }
    }
  }
  for (const WorkerInfo& w : recs) {
    wait_for_exit(spool, w.file);
  }
  if (now) {
    end_orphans(spool);
  }
  return workers;
}

} // namespace queuectl
