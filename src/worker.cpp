#include "queuectl/worker.hpp"

#include "queuectl/error.hpp"
#include "queuectl/job_index.hpp"
#include "queuectl/lifecycle.hpp"
#include "queuectl/process.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/stats.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

namespace queuectl {

namespace {

constexpr Micros k_recover_every = 4'000'000;   // abandoned jobs are found within 5 s
constexpr Micros k_rescan_every = 60'000'000;   // backstop in case inotify missed something
constexpr Micros k_kill_grace = 2'000'000;      // SIGTERM -> SIGKILL
constexpr Micros k_clean_every = 600'000'000;   // temporaries left by crashed processes
// A run's start is written into the job file only once the run has lasted this long: a
// shorter run's outcome is written instead (see claim_job in lifecycle.hpp).
constexpr Micros k_record_start_after = 50'000;
constexpr auto k_group_window = std::chrono::milliseconds(20); // see Committer
constexpr std::size_t k_group_max = 32;

// Finishes jobs off the worker's critical path: moving a job to its next state costs an
// fdatasync and an fsync, which this thread pays while the worker already runs the next
// job. It commits in groups: what finishes within k_group_window of the first item (or
// while it syncs) shares one fsync per directory. Each sync costs the machine more than
// its own time (it slows every process start running beside it), and the group only
// delays when the outcome is durable and the job's lock is released, not the job's move
// into its next directory.
class Committer {
public:
  struct Item {
    LockedJob locked;
    Job job;
    JobState to;
    StatsEvent stats;
  };

  Committer(Spool& spool, const LogSink& log) : m_spool(spool), m_log(log), m_thread([this] { loop(); }) {}
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;
  ~Committer() { close(); }

  void push(Item item) {
    {
      const std::lock_guard<std::mutex> g(m_mutex);
      m_items.push_back(std::move(item));
    }
    m_cv.notify_one();
  }

  // Commits what is queued, then stops the thread.
  void close() {
    {
      const std::lock_guard<std::mutex> g(m_mutex);
      if (m_closed) {
        return;
      }
      m_closed = true;
    }
    m_cv.notify_one();
    m_thread.join();
  }

private:
  void loop() {
    for (;;) {
      std::deque<Item> batch;
      {
        std::unique_lock<std::mutex> g(m_mutex);
        m_cv.wait(g, [this] { return m_closed || !m_items.empty(); });
        if (m_items.empty()) {
          return;
        }
        m_cv.wait_for(g, k_group_window, [this] { return m_closed || m_items.size() >= k_group_max; });
        batch.swap(m_items);
      }
      std::set<JobState> dirs;
      for (Item& it : batch) {
        try {
          m_spool.move(it.locked, it.to, it.job, false, &m_spares);
          dirs.insert(it.to);
        } catch (const Error& e) {
          // The job stays in processing/; once its lock is dropped below, recovery
          // counts the run as failed ("worker died") rather than losing it.
          m_log(fmt::format("cannot record the outcome of job {}: {}", it.locked.id, e.what()));
        }
      }
      for (JobState s : dirs) {
        try {
          m_spool.sync_dir(s);
        } catch (const Error& e) {
          m_log(e.what());
        }
      }
      for (const Item& it : batch) {
        if (it.locked.state == it.to) {
          m_stats.record(it.stats);
        }
      }
      // Locks are released here, after the new state is durable.
    }
  }

  Spool& m_spool;
  const LogSink& m_log;
  StatsWriter m_stats{m_spool};
  Spares m_spares{fmt::format("{}c", ::getpid())};
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Item> m_items;
  bool m_closed = false;
  std::thread m_thread;
};

struct Running {
  Claim claim;
  pid_t pid = 0;
  Fd log;
  Micros started = 0;
  bool start_recorded = false; // the staged rewrite is committed
  Micros deadline = 0; // 0: no timeout
  Micros kill_at = 0;  // SIGKILL the group at this time (after SIGTERM)
  bool timed_out = false;
  bool stopped = false;
};

class Worker {
public:
  Worker(Spool& spool, pid_t supervisor, const LogSink& log)
      : m_spool(spool), m_log(log), m_reg(spool, RecordKind::worker, supervisor, 0), m_committer(spool, log) {}

  int run(int ready_fd, IndexSnapshot snapshot);

private:
  void setup_events();
  void index_file(JobState s, std::string_view name);
  void drain_inotify();
  void drain_signals();
  void start_next(Micros now);
  void launch(Claim c, Micros now);
  void finish(int status, Micros now);
  void conclude(Claim c, const RunResult& r, Micros now, std::optional<double> seconds = std::nullopt);
  void record_start();
  void recover();
  void prepare_log();
  Fd open_log(const std::string& id);
  int poll_timeout(Micros now) const;
  const Config& config() { return m_config.get(m_spool.root_dir(), m_spool.path_of("config.json", "")); }

  Spool& m_spool;
  const LogSink& m_log;
  Registration m_reg;
  JobIndex m_index;
  Fd m_inotify;
  Fd m_signals;
  int m_wd_pending = -1;
  int m_wd_failed = -1;
  std::optional<Running> m_run;
  bool m_stopping = false;
  bool m_stop_now = false;
  bool m_rescan = false;
  Micros m_next_recover = 0;
  Micros m_next_rescan = 0;
  Micros m_next_clean = 0;
  std::int64_t m_default_priority = 0;
  pid_t m_pid = ::getpid();
  ConfigCache m_config;
  Spares m_spares{fmt::format("{}w", m_pid)};
  Fd m_spare_log; // see prepare_log
  std::string m_spare_log_name;
  unsigned m_spare_log_serial = 0;
  Committer m_committer; // last: joined before the rest is destroyed
};

void Worker::setup_events() {
  m_inotify = Fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!m_inotify) {
    throw_errno("cannot start inotify for", m_spool.root().string());
  }
  const uint32_t mask = IN_MOVED_TO | IN_CLOSE_WRITE;
  m_wd_pending = ::inotify_add_watch(m_inotify.get(), m_spool.path_of(JobState::pending, "").c_str(), mask);
  m_wd_failed = ::inotify_add_watch(m_inotify.get(), m_spool.path_of(JobState::failed, "").c_str(), mask);
  if (m_wd_pending < 0 || m_wd_failed < 0) {
    throw_errno("cannot watch", m_spool.path_of(JobState::pending, ""));
  }
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1}) {
    sigaddset(&set, sig);
  }
  m_signals = Fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!m_signals) {
    throw_errno("cannot create signalfd for", "worker");
  }
}

void Worker::index_file(JobState s, std::string_view name) {
  const auto id = id_of_file(name);
  if (!id || m_index.contains(*id, s)) {
    return;
  }
  if (auto e = read_index_entry(m_spool, s, *id, std::string(name), m_default_priority)) {
    m_index.add(std::move(*e));
  }
}

void Worker::drain_inotify() {
  alignas(struct inotify_event) char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(m_inotify.get(), buf, sizeof buf);
    if (n <= 0) {
      return; // EAGAIN: drained
    }
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const struct inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
      if (ev->mask & IN_Q_OVERFLOW) {
        m_rescan = true;
        continue;
      }
      if (ev->len == 0) {
        continue;
      }
      const JobState s = ev->wd == m_wd_failed ? JobState::failed : JobState::pending;
      index_file(s, ev->name);
    }
  }
}

void Worker::drain_signals() {
  signalfd_siginfo si{};
  while (::read(m_signals.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    switch (si.ssi_signo) {
    case SIGCHLD:
      for (;;) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) {
          break;
        }
        if (m_run && pid == m_run->pid) {
          finish(status, now_micros());
        }
      }
      break;
    case SIGUSR1:
      m_stopping = true;
      m_stop_now = true;
      if (m_run && !m_run->stopped) {
        m_run->stopped = true;
        signal_group(m_run->pid, SIGTERM);
        m_run->kill_at = now_micros() + k_kill_grace;
      }
      break;
    default: // SIGTERM, SIGINT, SIGHUP: finish the running job, take no new one
      m_stopping = true;
      break;
    }
  }
}

void Worker::start_next(Micros now) {
  while (auto e = m_index.pop_ready(now)) {
    std::optional<Claim> c;
    Micros due = 0;
    ClaimOutcome outcome = ClaimOutcome::gone;
    try {
      outcome = claim_job(m_spool, config(), *e, now, c, &due, &m_spares);
    } catch (const Error& err) {
      m_log(fmt::format("cannot claim job {}: {}", e->id, err.what()));
      continue;
    }
    switch (outcome) {
    case ClaimOutcome::claimed:
      launch(std::move(*c), now);
      return;
    case ClaimOutcome::not_due:
      e->due = due;
      m_index.add(std::move(*e));
      break;
    case ClaimOutcome::quarantined:
      m_log(fmt::format("job file {} is invalid: moved to dead/", job_file(e->id)));
      record_stats(m_spool, StatsEvent{Counter::jobs_dead, std::nullopt, std::nullopt});
      break;
    case ClaimOutcome::gone:
      break;
    }
  }
}

// A worker keeps an empty log file ready in processing/ (a locked dot-temp) and renames it
// into place when it claims a job, so that creating a file, which allocates an inode and
// is slow on some file systems, is done between jobs rather than between a job's enqueue
// and its start.
void Worker::prepare_log() {
  if (m_spare_log) {
    return;
  }
  const int pdir = m_spool.dir(JobState::processing);
  m_spare_log_name = fmt::format(".log.{}.{}.tmp", m_pid, m_spare_log_serial++);
  Fd fd(::openat(pdir, m_spare_log_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
                 m_spool.file_mode()));
  if (fd && sys::try_lock(fd.get(), true)) { // locked: never taken for a stale temporary
    m_spare_log = std::move(fd);
  } else if (fd) {
    ::unlinkat(pdir, m_spare_log_name.c_str(), 0);
  }
}

Fd Worker::open_log(const std::string& id) {
  const int pdir = m_spool.dir(JobState::processing);
  const std::string lname = log_file(id);
  if (m_spare_log) {
    if (::renameat2(pdir, m_spare_log_name.c_str(), pdir, lname.c_str(), RENAME_NOREPLACE) == 0) {
      return std::move(m_spare_log);
    }
    if (errno != EEXIST) {
      m_spare_log.reset(); // gone: a new one is made after this job
    }
  }
  // A log from an earlier run of the job (it moves with the job), or no spare: append.
  return Fd(::openat(pdir, lname.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, m_spool.file_mode()));
}

void Worker::launch(Claim c, Micros now) {
  const std::string id = c.locked.id;
  Fd log = open_log(id);
  const Json& j = c.job.json();
  if (log) {
    const std::string head = fmt::format("=== queuectl: job {} attempt {} of {} started {} by worker {} ===\n", id,
                                         c.job.attempts(), c.job.max_runs(), format_time(now), m_pid);
    (void)!::write(log.get(), head.data(), head.size());
  }
  SpawnSpec spec;
  spec.command = c.job.command();
  if (const auto it = j.find("cwd"); it != j.end() && it->is_string()) {
    spec.cwd = it->get<std::string>();
  }
  if (const auto it = j.find("env"); it != j.end() && it->is_object()) {
    spec.env = *it;
  }
  spec.env["QUEUECTL_JOB_ID"] = id;
  spec.env["QUEUECTL_ATTEMPT"] = std::to_string(c.job.attempts());
  spec.env["QUEUECTL_SPOOL"] = m_spool.root().string();
  spec.log_fd = log ? log.get() : -1;
  // Both the job file in place and its staged new content: whichever holds the name
  // when this worker dies, the command holds its lock.
  spec.keep_fds = {c.locked.lock.get(), c.staged.fd.get()};
  pid_t pid = 0;
  std::optional<std::string> spawn_error;
  try {
    pid = spawn_job(spec);
  } catch (const Error& e) {
    spawn_error = e.what();
  }
  if (spawn_error) {
    if (log) {
      const std::string line = *spawn_error + "\n";
      (void)!::write(log.get(), line.data(), line.size());
    }
    conclude(std::move(c), RunResult{127, *spawn_error}, now);
    return;
  }
  m_reg.set_job(id);
  Running r;
  r.claim = std::move(c);
  r.pid = pid;
  r.log = std::move(log);
  r.started = now;
  const double t = r.claim.job.timeout();
  r.deadline = t > 0 ? later_by(now, t) : 0;
  m_run = std::move(r);
}

// The run has lasted: its start goes into the job file (attempts, state processing).
void Worker::record_start() {
  m_run->start_recorded = true;
  try {
    m_spool.commit_rewrite(m_run->claim.locked, m_run->claim.staged, false);
  } catch (const Error& e) {
    // Nothing lost: the file keeps its old content, which readers count the run for.
    m_log(fmt::format("cannot record the start of job {}: {}", m_run->claim.locked.id, e.what()));
  }
}

void Worker::finish(int status, Micros now) {
  Running r = std::move(*m_run);
  m_run.reset();
  RunResult res;
  res.exit_code = exit_code_of(status);
  if (r.timed_out) {
    res.error = "timeout";
  } else if (r.stopped) {
    res.error = "stopped by 'queuectl worker stop --now'";
  } else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    res.error = describe_status(status);
  }
  if (r.log) {
    const std::string tail = fmt::format("=== queuectl: job {} {} after {:.3f} s ===\n", r.claim.locked.id,
                                         res.error.empty() ? "completed" : res.error,
                                         static_cast<double>(now - r.started) / 1e6);
    (void)!::write(r.log.get(), tail.data(), tail.size());
  }
  r.log.reset();
  m_reg.set_job(std::nullopt);
  conclude(std::move(r.claim), res, now, static_cast<double>(now - r.started) / 1e6);
  prepare_log();
}

void Worker::conclude(Claim c, const RunResult& r, Micros now, std::optional<double> seconds) {
  JobState to = JobState::dead;
  try {
    to = record_run(c.job, r, config(), now);
  } catch (const Error& e) {
    m_log(e.what());
    to = record_run(c.job, r, Config(), now);
  }
  if (to != JobState::completed) {
    m_log(fmt::format("job {} attempt {} failed ({}): {}", c.locked.id, c.job.attempts(), r.error,
                      to == JobState::failed ? "will retry at " + c.job.json().value("next_run_at", std::string())
                                             : "moved to the dead-letter queue"));
  }
  m_spool.discard_rewrite(c.staged); // committed already, or superseded by the outcome
  m_committer.push(Committer::Item{std::move(c.locked), std::move(c.job), to, stats_event(to, seconds)});
}

void Worker::recover() {
  try {
    for (const Recovered& r : recover_abandoned(m_spool)) {
      m_log(fmt::format("recovered job {} of a worker that died: moved to {}/", r.id, state_dir(r.to)));
    }
  } catch (const Error& e) {
    m_log(fmt::format("recovery failed: {}", e.what()));
  }
}

int Worker::poll_timeout(Micros now) const {
  Micros next = std::min({m_next_recover, m_next_rescan, m_next_clean});
  if (const auto due = m_index.next_due(); due && !m_run) {
    next = std::min(next, *due);
  }
  if (m_run) {
    if (!m_run->start_recorded) {
      next = std::min(next, m_run->started + k_record_start_after);
    }
    if (m_run->deadline > 0 && !m_run->timed_out) {
      next = std::min(next, m_run->deadline);
    }
    if (m_run->kill_at > 0) {
      next = std::min(next, m_run->kill_at);
    }
  }
  const Micros wait = next - now;
  if (wait <= 0) {
    return 0;
  }
  return static_cast<int>(std::min<Micros>((wait + 999) / 1000, 60'000));
}

int Worker::run(int ready_fd, IndexSnapshot snapshot) {
  setup_events();
  m_default_priority = config().job_defaults().priority;
  recover();
  remove_stale_temps(m_spool);
  snapshot.fill(m_index); // the supervisor's (see Supervisor::run); then only new jobs are read
  snapshot = IndexSnapshot();
  index_waiting(m_index, m_spool, JobState::pending, m_default_priority);
  index_waiting(m_index, m_spool, JobState::failed, m_default_priority);
  prepare_log();
  const Micros t0 = now_micros();
  m_next_recover = t0 + k_recover_every;
  m_next_rescan = t0 + k_rescan_every;
  m_next_clean = t0 + k_clean_every;
  if (ready_fd >= 0) {
    (void)!::write(ready_fd, "r", 1);
    ::close(ready_fd);
  }
  for (;;) {
    Micros now = now_micros();
    if (!m_run && !m_stopping) {
      start_next(now);
    }
    if (m_stopping && !m_run) {
      break;
    }
    now = now_micros();
    if (now >= m_next_recover) {
      recover();
      m_next_recover = now + k_recover_every;
    }
    if (m_rescan || now >= m_next_rescan) {
      m_rescan = false;
      index_waiting(m_index, m_spool, JobState::pending, m_default_priority);
      index_waiting(m_index, m_spool, JobState::failed, m_default_priority);
      m_next_rescan = now + k_rescan_every;
    }
    if (now >= m_next_clean) {
      try {
        remove_stale_temps(m_spool);
      } catch (const Error& e) {
        m_log(fmt::format("cannot remove stale temporaries: {}", e.what()));
      }
      m_next_clean = now + k_clean_every;
    }
    if (m_run) {
      if (!m_run->start_recorded && now >= m_run->started + k_record_start_after) {
        record_start();
      }
      if (m_run->deadline > 0 && !m_run->timed_out && now >= m_run->deadline) {
        m_run->timed_out = true;
        signal_group(m_run->pid, SIGTERM);
        m_run->kill_at = now + k_kill_grace;
      } else if (m_run->kill_at > 0 && now >= m_run->kill_at) {
        signal_group(m_run->pid, SIGKILL);
        m_run->kill_at = 0;
      }
    }
    pollfd fds[] = {{m_inotify.get(), POLLIN, 0}, {m_signals.get(), POLLIN, 0}};
    if (::poll(fds, 2, poll_timeout(now_micros())) < 0 && errno != EINTR) {
      throw_errno("cannot poll", "worker");
    }
    if (fds[1].revents & POLLIN) {
      drain_signals();
    }
    if (fds[0].revents & POLLIN) {
      drain_inotify();
    }
  }
  m_committer.close();
  if (m_spare_log) {
    ::unlinkat(m_spool.dir(JobState::processing), m_spare_log_name.c_str(), 0);
  }
  return 0;
}

} // namespace

int run_worker(const std::filesystem::path& root, pid_t supervisor, IndexSnapshot snapshot, int ready_fd,
               const LogSink& log) {
  reset_ignored_signals();
  // A closed stderr must give EPIPE, not kill the worker; blocked, SIGPIPE never arrives.
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::sigprocmask(SIG_BLOCK, &pipe_set, nullptr);
  Spool spool = Spool::open(root);
  Worker w(spool, supervisor, log);
  return w.run(ready_fd, std::move(snapshot));
}

} // namespace queuectl
