#include "queuectl/worker.hpp"

#include "queuectl/error.hpp"
#include "queuectl/job_index.hpp"
#include "queuectl/process.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/counters.hpp"
#include "queuectl/sys.hpp"
#include "queuectl/transition.hpp"

#include <fmt/format.h>

#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

namespace queuectl {

namespace {

constexpr Micros k_recover_every = 4'000'000;   // backstop: abandoned jobs are found within 5 s
constexpr Micros k_rescan_every = 60'000'000;   // backstop in case inotify missed something
constexpr Micros k_kill_grace = 2'000'000;      // SIGTERM -> SIGKILL
constexpr Micros k_sweep_every = 60'000'000;    // leftovers of dead processes in tmp/
// A run's start is written into the job file only once the run has lasted this long: a
// shorter run's outcome is written instead (see Transitions::claim).
constexpr Micros k_record_start_after = 50'000;
constexpr auto k_group_window = std::chrono::milliseconds(20); // see Committer
constexpr std::size_t k_group_max = 32;

// Finishes jobs off the worker's critical path: writing an outcome costs an fdatasync
// and moving the job an fsync of its new directory, which this thread pays while the
// worker already runs the next job. It commits in groups: what finishes within
// k_group_window of the first item (or while it syncs) shares one fsync per directory.
// Each sync costs the machine more than its own time (it slows every process start
// running beside it). The job stays locked until its new state is durable.
class Committer {
public:
  struct Item {
    Outcome outcome;
    CounterEvent counts;
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
      std::vector<const Item*> done;
      for (Item& it : batch) {
        try {
          m_tx.commit(it.outcome);
          dirs.insert(it.outcome.to);
          done.push_back(&it);
        } catch (const Error& e) {
          // The job stays in processing/; once its lock is dropped below, recovery
          // finishes the move or counts the run as failed, rather than losing it.
          m_log(fmt::format("cannot record the outcome of job {}: {}", it.outcome.claimed.id(), e.what()));
        }
      }
      for (JobState s : dirs) {
        try {
          m_tx.sync(s);
        } catch (const Error& e) {
          m_log(e.what());
        }
      }
      for (const Item* it : done) {
        m_counters.add(it->counts);
      }
      // Locks are released here, after the new state is durable.
    }
  }

  Spool& m_spool;
  const LogSink& m_log;
  Counters m_counters{m_spool};
  Transitions m_tx{m_spool};
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Item> m_items;
  bool m_closed = false;
  std::thread m_thread;
};

// Threads that wait for the lock of a job whose worker is gone while its command runs on
// (an orphan): the kernel hands the lock over the moment the last process holding it
// exits, and the worker recovers the job at once instead of at its next scan. Each
// waiter blocks in flock(2) on a descriptor of its own; what it gets is handed to the
// worker's event loop through an eventfd. The threads are detached: a worker that stops
// leaves the waiting to the next one (its process exit ends them).
class LockWaiters {
public:
  LockWaiters() : m_box(std::make_shared<Box>()) {}
  int fd() const { return m_box->event.fd(); }

  // Starts waiting for processing/<id>.json unless a waiter does already.
  void wait_for(const Spool& spool, const std::string& id) {
    if (!m_waiting.insert(id).second) {
      return;
    }
    Fd fd;
    try {
      fd = spool.open_job(JobState::processing, id);
    } catch (const Error&) {
      // not a regular file: never a job of ours to wait for
    }
    if (!fd) {
      m_waiting.erase(id);
      return;
    }
    std::thread([box = m_box, id, fd = std::move(fd)]() mutable {
      try {
        sys::lock(fd.get(), true);
      } catch (const Error&) {
        fd.reset(); // cannot wait: the worker's scans are the backstop
      }
      const std::lock_guard<std::mutex> g(box->mutex);
      box->ready.emplace_back(id, std::move(fd));
      box->event.ring();
    }).detach();
  }

  // The locks acquired since the last call.
  std::vector<std::pair<std::string, Fd>> take() {
    m_box->event.clear();
    std::vector<std::pair<std::string, Fd>> out;
    {
      const std::lock_guard<std::mutex> g(m_box->mutex);
      out.swap(m_box->ready);
    }
    for (const auto& [id, fd] : out) {
      m_waiting.erase(id);
    }
    std::erase_if(out, [](const auto& r) { return !r.second; });
    return out;
  }

private:
  struct Box {
    std::mutex mutex;
    std::vector<std::pair<std::string, Fd>> ready;
    sys::EventFd event;
  };
  std::shared_ptr<Box> m_box;
  std::set<std::string> m_waiting;
};

struct Running {
  Claimed claim;
  pid_t pid = 0;
  Micros started = 0;
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
  void launch(Claimed c, Micros now);
  void finish(int status, Micros now);
  void conclude(Claimed c, const RunResult& r, Micros now, std::optional<double> seconds = std::nullopt);
  void record_start();
  void recover();
  void recover_released();
  void sweep();
  void append_log(int fd, const std::string& text);
  int poll_timeout(Micros now) const;
  const Config& config() { return m_config.get(m_spool.root_dir()); }

  Spool& m_spool;
  const LogSink& m_log;
  Registration m_reg;
  Transitions m_tx{m_spool};
  Counters m_counters{m_spool}; // this thread's (the committer has its own)
  JobIndex m_index;
  LockWaiters m_waiters;
  std::optional<sys::Watch> m_watch;
  std::optional<sys::SignalFd> m_signals;
  int m_wd_pending = -1;
  int m_wd_failed = -1;
  std::optional<Running> m_run;
  bool m_stopping = false;
  bool m_rescan = false;
  Micros m_next_recover = 0;
  Micros m_next_rescan = 0;
  Micros m_next_sweep = 0;
  std::int64_t m_default_priority = 0;
  pid_t m_pid = sys::own_pid();
  ConfigCache m_config;
  Committer m_committer; // last: joined before the rest is destroyed
};

void Worker::setup_events() {
  m_watch.emplace();
  const uint32_t mask = IN_MOVED_TO | IN_CLOSE_WRITE;
  m_wd_pending = m_watch->add(m_spool.path_of(JobState::pending, ""), mask);
  m_wd_failed = m_watch->add(m_spool.path_of(JobState::failed, ""), mask);
  m_signals.emplace(std::initializer_list<int>{SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1});
}

void Worker::index_file(JobState s, std::string_view name) {
  const auto stem = stem_of_file(name);
  if (!stem || m_index.contains(*stem, s)) {
    return;
  }
  if (auto e = read_index_entry(m_spool, s, *stem, m_default_priority)) {
    m_index.add(std::move(*e));
  }
}

void Worker::drain_inotify() {
  m_watch->drain([this](int wd, std::uint32_t mask, std::string_view name) {
    if (mask & IN_Q_OVERFLOW) {
      m_rescan = true; // inotify is a doorbell, not a log: look at everything again
    } else if (!name.empty()) {
      index_file(wd == m_wd_failed ? JobState::failed : JobState::pending, name);
    }
  });
}

void Worker::drain_signals() {
  while (const auto sig = m_signals->next()) {
    switch (*sig) {
    case SIGCHLD:
      while (const auto child = sys::reap_any()) {
        if (m_run && child->pid == m_run->pid) {
          finish(child->status, now_micros());
        }
      }
      break;
    case SIGUSR1:
      m_stopping = true;
      if (m_run && !m_run->stopped) {
        m_run->stopped = true;
        sys::signal_group(m_run->pid, SIGTERM);
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
    ClaimResult r;
    try {
      r = m_tx.claim(e->from, e->id, config(), now);
    } catch (const Error& err) {
      m_log(fmt::format("cannot claim job {}: {}", e->id, err.what()));
      continue;
    }
    switch (r.status) {
    case ClaimResult::claimed:
      launch(std::move(*r.job), now);
      return;
    case ClaimResult::not_due:
      e->due = r.due;
      m_index.add(std::move(*e));
      break;
    case ClaimResult::quarantined:
      m_log(fmt::format("job file {}/{} is invalid ({}): moved to dead/", state_dir(e->from), job_file(e->id), r.note));
      m_counters.add(count_one(Counter::jobs_dead));
      break;
    case ClaimResult::resolved:
      m_log(r.note);
      break;
    case ClaimResult::gone:
      break;
    }
  }
}

void Worker::append_log(int fd, const std::string& text) {
  if (fd < 0) {
    return;
  }
  try {
    sys::write_all(fd, text, "job log");
  } catch (const Error& e) {
    m_log(e.what()); // the job runs without its header: its output still goes to the log
  }
}

void Worker::launch(Claimed c, Micros now) {
  const std::string id = c.id();
  const Json& j = c.job().json();
  append_log(c.log_fd(), fmt::format("=== queuectl: job {} attempt {} of {} started {} by worker {} ===\n", id,
                                     c.job().attempts(), c.job().max_runs(), format_time(now), m_pid));
  SpawnSpec spec;
  spec.command = c.job().command();
  if (const auto it = j.find("cwd"); it != j.end() && it->is_string()) {
    spec.cwd = it->get<std::string>();
  }
  if (const auto it = j.find("env"); it != j.end() && it->is_object()) {
    spec.env = *it;
  }
  spec.env["QUEUECTL_JOB_ID"] = id;
  spec.env["QUEUECTL_ATTEMPT"] = std::to_string(c.job().attempts());
  spec.env["QUEUECTL_SPOOL"] = m_spool.root().string();
  spec.log_fd = c.log_fd();
  // Whichever file holds the job's name when this worker dies, the command holds its lock.
  spec.keep_fds = c.inherit_fds();
  pid_t pid = 0;
  try {
    pid = spawn_job(spec);
  } catch (const Error& e) {
    append_log(c.log_fd(), std::string(e.what()) + "\n");
    conclude(std::move(c), RunResult{127, e.what()}, now);
    return;
  }
  m_reg.set_job(id);
  Running r;
  r.claim = std::move(c);
  r.pid = pid;
  r.started = now;
  const double t = r.claim.job().timeout();
  r.deadline = t > 0 ? later_by(now, t) : 0;
  m_run = std::move(r);
}

// The run has lasted: its start goes into the job file (attempts, state processing).
void Worker::record_start() {
  try {
    m_tx.record_start(m_run->claim);
  } catch (const Error& e) {
    // Nothing lost: the file keeps its old content, which readers count the run for.
    m_log(fmt::format("cannot record the start of job {}: {}", m_run->claim.id(), e.what()));
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
  append_log(r.claim.log_fd(), fmt::format("=== queuectl: job {} {} after {:.3f} s ===\n", r.claim.id(),
                                           res.error.empty() ? "completed" : res.error,
                                           static_cast<double>(now - r.started) / 1e6));
  m_reg.set_job(std::nullopt);
  conclude(std::move(r.claim), res, now, static_cast<double>(now - r.started) / 1e6);
  m_tx.prepare_log();
}

void Worker::conclude(Claimed c, const RunResult& r, Micros now, std::optional<double> seconds) {
  const std::string id = c.id();
  const std::int64_t attempt = c.job().attempts();
  Config cfg;
  try {
    cfg = config();
  } catch (const Error& e) {
    m_log(e.what()); // the config went bad: its defaults decide
  }
  Outcome o = m_tx.conclude(std::move(c), r, cfg, now);
  if (o.to != JobState::completed) {
    m_log(fmt::format("job {} attempt {} failed ({}): {}", id, attempt, r.error,
                      o.to == JobState::failed ? "will retry at " + o.job.text("next_run_at")
                                               : "moved to the dead-letter queue"));
  }
  const JobState to = o.to;
  m_committer.push(Committer::Item{std::move(o), outcome_event(to, seconds)});
}

// Recovers the jobs of dead workers whose lock is free, and waits for the lock of those
// whose command still runs (see LockWaiters).
void Worker::recover() {
  std::vector<std::string> held;
  try {
    const auto recovered = m_tx.recover("worker died", &held);
    for (const Recovered& r : recovered) {
      m_log(fmt::format("recovered job {} of a worker that died: moved to {}/", r.id, state_dir(r.to)));
    }
    if (!held.empty()) {
      std::set<std::string> running;
      for (const WorkerInfo& w : live_records(m_spool)) {
        if (w.job) {
          running.insert(*w.job);
        }
      }
      for (const std::string& id : held) {
        if (!running.count(id) && !(m_run && m_run->claim.id() == id)) {
          m_waiters.wait_for(m_spool, id);
        }
      }
    }
    if (!recovered.empty()) {
      sweep();
    }
  } catch (const Error& e) {
    m_log(fmt::format("recovery failed: {}", e.what()));
  }
}

// Orphaned commands have exited: their jobs are recovered now.
void Worker::recover_released() {
  for (auto& [id, fd] : m_waiters.take()) {
    try {
      auto l = m_spool.adopt_lock(JobState::processing, id, std::move(fd));
      if (!l) {
        continue; // it moved on: it was not an orphan after all
      }
      if (const auto r = m_tx.recover_locked(std::move(*l), "worker died")) {
        m_log(fmt::format("recovered job {} of a worker that died, once its command exited: moved to {}/", r->id,
                          state_dir(r->to)));
      }
      sweep();
    } catch (const Error& e) {
      m_log(fmt::format("recovery of job {} failed: {}", id, e.what()));
    }
  }
}

void Worker::sweep() {
  try {
    m_spool.sweep_tmp();
  } catch (const Error& e) {
    m_log(fmt::format("cannot remove leftovers in tmp/: {}", e.what()));
  }
}

int Worker::poll_timeout(Micros now) const {
  Micros next = std::min({m_next_recover, m_next_rescan, m_next_sweep});
  if (const auto due = m_index.next_due(); due && !m_run) {
    next = std::min(next, *due);
  }
  if (m_run) {
    if (!m_run->claim.start_recorded()) {
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
  m_spool.sweep_old_temps();
  sweep();
  snapshot.fill(m_index); // the supervisor's (see Supervisor::run); then only new jobs are read
  snapshot = IndexSnapshot();
  index_waiting(m_index, m_spool, JobState::pending, m_default_priority);
  index_waiting(m_index, m_spool, JobState::failed, m_default_priority);
  m_tx.prepare_log();
  const Micros t0 = now_micros();
  m_next_recover = t0 + k_recover_every;
  m_next_rescan = t0 + k_rescan_every;
  m_next_sweep = t0 + k_sweep_every;
  if (ready_fd >= 0) {
    Fd ready(ready_fd);
    sys::write_all(ready.get(), "r", "the supervisor's readiness pipe");
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
    if (now >= m_next_sweep) {
      sweep();
      m_next_sweep = now + k_sweep_every;
    }
    if (m_run) {
      if (!m_run->claim.start_recorded() && now >= m_run->started + k_record_start_after) {
        record_start();
      }
      if (m_run->deadline > 0 && !m_run->timed_out && now >= m_run->deadline) {
        m_run->timed_out = true;
        sys::signal_group(m_run->pid, SIGTERM);
        m_run->kill_at = now + k_kill_grace;
      } else if (m_run->kill_at > 0 && now >= m_run->kill_at) {
        sys::signal_group(m_run->pid, SIGKILL);
        m_run->kill_at = 0;
      }
    }
    pollfd fds[] = {{m_watch->fd(), POLLIN, 0}, {m_signals->fd(), POLLIN, 0}, {m_waiters.fd(), POLLIN, 0}};
    sys::poll(fds, 3, poll_timeout(now_micros()));
    if (fds[1].revents & POLLIN) {
      drain_signals();
    }
    if (fds[0].revents & POLLIN) {
      drain_inotify();
    }
    if (fds[2].revents & POLLIN) {
      recover_released();
    }
  }
  m_committer.close();
  sweep();
  return 0;
}

} // namespace

int run_worker(const std::filesystem::path& root, pid_t supervisor, IndexSnapshot snapshot, int ready_fd,
               const LogSink& log) {
  sys::reset_ignored_signals();
  // A closed stderr must give EPIPE, not kill the worker; blocked, SIGPIPE never arrives.
  sys::block_signals(sys::signal_set({SIGPIPE}));
  Spool spool = Spool::open(root);
  Worker w(spool, supervisor, log);
  return w.run(ready_fd, std::move(snapshot));
}

} // namespace queuectl
