#include "queuectl/worker.hpp"

#include "queuectl/error.hpp"
#include "queuectl/process.hpp"
#include "queuectl/spool.hpp"

#include <fmt/format.h>

#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>

#include <algorithm>
#include <set>

namespace queuectl {

RunningJob::RunningJob(Claimed claim, sys::Child child, Micros started, double timeout, Micros grace)
    : m_claim(std::move(claim)), m_child(std::move(child)), m_started(started),
      m_deadline(timeout > 0 ? later_by(started, timeout) : 0), m_grace(grace) {}

void RunningJob::terminate(Micros now) {
  m_child.signal_group(SIGTERM);
  m_kill_at = now + m_grace;
}

void RunningJob::tick(Micros now) {
  if (m_deadline > 0 && !m_timed_out && !m_stopped && now >= m_deadline) {
    m_timed_out = true;
    terminate(now);
  } else if (m_kill_at > 0 && now >= m_kill_at) {
    m_child.signal_group(SIGKILL);
    m_kill_at = 0;
  }
}

std::optional<Micros> RunningJob::next_tick() const {
  if (m_kill_at > 0) {
    return m_kill_at;
  }
  if (m_deadline > 0 && !m_timed_out && !m_stopped) {
    return m_deadline;
  }
  return std::nullopt;
}

void RunningJob::stop_now(Micros now) {
  if (!m_stopped && !m_timed_out) {
    m_stopped = true;
    terminate(now);
  }
}

void RunningJob::cancel(Micros now) {
  if (!m_cancelled) {
    m_cancelled = true;
    if (!m_stopped && !m_timed_out) {
      terminate(now);
    }
  }
}

RunResult RunningJob::result(int status) const {
  RunResult res;
  res.exit_code = exit_code_of(status);
  if (m_cancelled) {
    res.error = "cancelled";
    res.cancelled = true;
  } else if (m_timed_out) {
    res.error = "timeout";
  } else if (m_stopped) {
    res.error = "stopped by 'queuectl worker stop --now'";
  } else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    res.error = describe_status(status);
  }
  return res;
}

Worker::Worker(Spool& spool, pid_t supervisor, const LogSink& log, WorkerTimes times, std::vector<std::string> queues)
    : m_spool(spool), m_log(log), m_times(times), m_reg(spool, RecordKind::worker, supervisor, 0), m_tx(spool),
      m_counters(spool), m_queues(std::move(queues)), m_slots(spool), m_pid(sys::own_pid()),
      m_committer(spool, log, times.grouping) {}

bool Worker::serves(const std::string& queue) const {
  if (m_queues.empty()) {
    return true;
  }
  const std::string_view q = queue.empty() ? std::string_view(k_default_queue) : std::string_view(queue);
  return std::find(m_queues.begin(), m_queues.end(), q) != m_queues.end();
}

const QueueSettings& Worker::settings_of(const std::string& queue) const {
  static const QueueSettings none;
  const auto it = m_queue_settings.find(queue.empty() ? std::string(k_default_queue) : queue);
  return it == m_queue_settings.end() ? none : it->second;
}

// Re-reads the queues' settings after config.json changed. A queue resumed has jobs on
// disk that no index keeps (a scan leaves a paused queue's jobs out): scan again.
void Worker::refresh_queues() {
  if (!m_queues_stale) {
    return;
  }
  m_queues_stale = false;
  std::map<std::string, QueueSettings> fresh;
  try {
    fresh = config().queues();
  } catch (const Error& e) {
    m_log(e.what()); // a broken config.json: the settings stay as they were
    return;
  }
  for (const auto& [name, q] : m_queue_settings) {
    const auto it = fresh.find(name);
    if (q.paused && (it == fresh.end() || !it->second.paused)) {
      m_rescan = true;
    }
  }
  m_queue_settings = std::move(fresh);
}

// done/ and dead/ tell when a job that others come after has finished.
void Worker::watch_finished() {
  if (m_wd_done < 0) {
    m_wd_done = m_watch->add(m_spool.path_of(JobState::completed, ""), IN_MOVED_TO);
    m_wd_dead = m_watch->add(m_spool.path_of(JobState::dead, ""), IN_MOVED_TO);
  }
}

void Worker::finished_job(std::string_view name) {
  const auto id = id_of_file(name);
  if (!id) {
    return;
  }
  const auto it = m_dependents.find(*id);
  if (it == m_dependents.end()) {
    return;
  }
  const std::vector<std::string> waiting = std::move(it->second);
  m_dependents.erase(it);
  for (const std::string& w : waiting) {
    m_blocked.erase(w); // its next try sees the job completed, or dead
    // A scan past skipped jobs may have left it out of the index: read it again.
    index_file(JobState::pending, job_file(w));
  }
}

void Worker::setup_events() {
  m_watch = Watch::open();
  if (!m_watch->polling().empty() && m_watch->polling() != k_poll_asked) { // the supervisor said that
    m_log(fmt::format("watching the spool by looking every {} ms: {}", k_poll_period / 1000, m_watch->polling()));
  }
  const uint32_t mask = IN_MOVED_TO | IN_CLOSE_WRITE;
  m_wd_pending = m_watch->add(m_spool.path_of(JobState::pending, ""), mask);
  m_wd_failed = m_watch->add(m_spool.path_of(JobState::failed, ""), mask);
  // config.json is replaced by rename (or written, or removed, by hand): re-read it then,
  // instead of checking it for every job.
  m_wd_root =
      m_watch->add(m_spool.root().string(), IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_DELETE);
  if (m_watch->polling().empty()) {
    m_config.watched(); // a poll sees config.json written in place only in a small root
  }
  // A slot of a queue's limit is free again when its last descriptor is closed.
  m_wd_slots = m_watch->add(m_slots.path(), IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
  // `cancel` of the running job: its request appears in workers/, or is renewed there.
  m_wd_workers = m_watch->add(m_spool.path_of("workers", ""), IN_CREATE | IN_ATTRIB);
  m_signals.emplace(std::initializer_list<int>{SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2});
}

void Worker::index_file(JobState s, std::string_view name) {
  const auto view = stem_of_file(name);
  if (!view) {
    return;
  }
  const std::string stem(*view);
  if (m_index.contains(stem, s)) {
    return;
  }
  // A job that arrives while jobs are left out on disk is read all the same: it may
  // run before them (a higher priority), and only its file says.
  if (auto e = read_index_entry(m_spool, s, stem, m_default_priority); e && accepts(*e)) {
    m_index.add(std::move(*e));
  }
}

void Worker::drain_inotify() {
  m_watch->drain([this](int wd, std::uint32_t mask, std::string_view name) {
    if (mask & IN_Q_OVERFLOW) {
      m_rescan = true; // inotify is a doorbell, not a log: look at everything again
      m_config.changed();
      m_queues_stale = true;
    } else if (wd == m_wd_root) {
      if (name == "config.json") {
        m_config.changed();
        m_queues_stale = true;
      }
    } else if (wd == m_wd_workers) {
      if (m_run && CancelRequest::is_request(name, m_run->claim().id())) {
        cancel_if_requested();
      }
    } else if (wd == m_wd_slots) {
      // a slot is being released: the next start_next tries again, and a few times more
      m_slot_retries = 6;
      m_slot_retry_delay = 1000;
    } else if (wd == m_wd_done || wd == m_wd_dead) {
      finished_job(name);
    } else if (!name.empty()) {
      index_file(wd == m_wd_failed ? JobState::failed : JobState::pending, name);
    }
  });
  if (!m_watch->polling().empty() && !m_dependents.empty()) {
    // A poll lists a large done/ seldom: look for the jobs waited on by name instead.
    std::vector<std::string> finished;
    for (const auto& [id, waiting] : m_dependents) {
      if (const auto st = m_spool.locate(id); !st || *st == JobState::completed || *st == JobState::dead) {
        finished.push_back(id);
      }
    }
    for (const std::string& id : finished) {
      finished_job(job_file(id));
    }
  }
}

void Worker::drain_signals() {
  while (const auto sig = m_signals->next()) {
    switch (*sig) {
    case SIGCHLD:
      if (m_run) {
        if (const auto status = m_run->try_reap()) {
          finish(*status, now_micros());
        }
      }
      break;
    case SIGUSR2: // how a `cancel` of an earlier version asks
      cancel_if_requested();
      break;
    case SIGUSR1:
      m_stopping = true;
      if (m_run) {
        m_run->stop_now(now_micros());
      }
      break;
    default: // SIGTERM, SIGINT, SIGHUP: finish the running job, take no new one
      m_stopping = true;
      break;
    }
  }
}

void Worker::start_next(Micros now) {
  refresh_queues();
  m_slot_retry_at = 0;
  bool scanned = false;
  std::vector<std::string> full; // queues found at their limit in this pass
  const auto can_start = [&](const IndexEntry& e) {
    if (m_blocked.count(e.id) != 0) {
      return false;
    }
    if (m_queue_settings.empty()) {
      return true;
    }
    const QueueSettings& q = settings_of(e.queue);
    return !q.paused && std::find(full.begin(), full.end(), e.queue) == full.end();
  };
  for (;;) {
    auto e = m_index.pop_ready(now, can_start);
    if (!e && !scanned && m_index.needs_scan(now)) {
      rescan(now); // the jobs kept have run out, and others wait on disk
      scanned = true;
      e = m_index.pop_ready(now, can_start);
    }
    if (!e && !scanned && rescan_past_skipped(now, full)) {
      scanned = true;
      continue;
    }
    if (!e) {
      if (!full.empty() && m_slot_retries > 0) {
        --m_slot_retries;
        m_slot_retry_at = now + m_slot_retry_delay;
        m_slot_retry_delay *= 2;
      }
      return;
    }
    Fd slot;
    if (const auto limit = settings_of(e->queue).concurrency) {
      try {
        slot = m_slots.try_take(e->queue.empty() ? k_default_queue : e->queue, *limit);
      } catch (const Error& err) {
        m_log(err.what());
      }
      if (!slot) {
        full.push_back(e->queue); // its jobs wait for a slot's release (an inotify event)
        m_index.add(std::move(*e));
        continue;
      }
    }
    if (e->waits) {
      watch_finished(); // before the claim looks: a completion meanwhile is an event
    }
    ClaimResult r;
    try {
      r = m_tx.claim(e->from, e->id, config(), now);
    } catch (const Error& err) {
      m_log(fmt::format("cannot claim job {}: {}", e->id, err.what()));
      continue;
    }
    if (r.status != ClaimResult::busy) {
      m_busy.erase(e->id);
    }
    switch (r.status) {
    case ClaimResult::busy: {
      // Locked: another worker claiming it (then it is gone at the next look), or a
      // command such as release finishing its move (then it is ours to take). Another
      // look soon, later each time.
      const int n = m_busy[e->id]++;
      e->due = now + std::min<Micros>(Micros{2000} << std::min(n, 9), 1'000'000);
      m_index.add(std::move(*e));
      break;
    }
    case ClaimResult::claimed:
      r.job->hold_slot(std::move(slot));
      launch(std::move(*r.job), now);
      return;
    case ClaimResult::blocked:
      m_committer.hurry(); // it may wait for an outcome of ours, not yet committed
      if (m_wd_done < 0) {
        // Not known to wait (a stale pending.index line): watch done/ and dead/, then
        // look again, so that a completion meanwhile is not missed.
        watch_finished();
        m_index.add(std::move(*e));
        break;
      }
      m_blocked[e->id] = r.note;
      m_dependents[r.note].push_back(e->id);
      m_index.add(std::move(*e));
      break;
    case ClaimResult::dependency_failed:
      m_log(fmt::format("job {} moved to the dead-letter queue: it comes after job {}, which is dead", e->id, r.note));
      m_counters.add(count_one(Counter::jobs_dead));
      break;
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
  sys::Child child;
  try {
    child = spawn_job(spec);
  } catch (const Error& e) {
    append_log(c.log_fd(), std::string(e.what()) + "\n");
    conclude(std::move(c), RunResult{127, e.what()}, now);
    return;
  }
  m_reg.set_job(id);
  const double timeout = c.job().timeout();
  m_run.emplace(std::move(c), std::move(child), now, timeout, m_times.kill_grace);
}

void Worker::cancel_if_requested() {
  if (m_run && !m_run->cancelling() && cancel_requested(m_spool, m_run->claim().id())) {
    m_log(fmt::format("job {}: cancelled by 'queuectl cancel'", m_run->claim().id()));
    m_run->cancel(now_micros());
  }
}

// The run has lasted: its start goes into the job file (attempts, state processing).
void Worker::record_start() {
  try {
    m_tx.record_start(m_run->claim());
  } catch (const Error& e) {
    // Nothing lost: the file keeps its old content, which readers count the run for.
    m_log(fmt::format("cannot record the start of job {}: {}", m_run->claim().id(), e.what()));
  }
}

void Worker::finish(int status, Micros now) {
  RunningJob r = std::move(*m_run);
  m_run.reset();
  r.claim().release_slot();
  RunResult res = r.result(status);
  if (!res.cancelled && WIFSIGNALED(status) && cancel_requested(m_spool, r.claim().id())) {
    res.error = "cancelled"; // `cancel` ended an orphan's group, or its worker's record was not seen
    res.cancelled = true;
  }
  const double seconds = static_cast<double>(now - r.started()) / 1e6;
  append_log(r.claim().log_fd(), fmt::format("=== queuectl: job {} {} after {:.3f} s ===\n", r.claim().id(),
                                             res.error.empty() ? "completed" : res.error, seconds));
  conclude(std::move(r.claim()), res, now, seconds);
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
  if (m_dependents.count(id) != 0) {
    m_committer.hurry(); // jobs here wait for it to be completed (or dead)
  }
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
        if (!running.count(id) && !(m_run && m_run->claim().id() == id)) {
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
    remove_stale_cancel_requests(m_spool, now_micros());
  } catch (const Error& e) {
    m_log(fmt::format("cannot remove leftovers in tmp/: {}", e.what()));
  }
}

// Everything waiting is looked at again: at start, when the jobs kept in the index have
// run out and others were left out, when inotify overflowed, and as a periodic backstop
// (spaced to at least 100 times the scan's own duration: a million waiting jobs are not
// listed every minute).
void Worker::rescan(Micros now) {
  m_rescan = false;
  refresh_queues();
  m_blocked.clear(); // every job is looked at afresh
  m_dependents.clear();
  m_busy.clear();
  const ScanStats st =
      scan_waiting(m_spool, m_default_priority, now, m_index, [this](const IndexEntry& e) { return accepts(e); });
  const Micros took = now_micros() - now;
  if (took > 1'000'000) {
    m_log(fmt::format("scanned {} pending jobs ({} read from their files) in {:.1f} s", st.pending, st.read,
                      static_cast<double>(took) / 1e6));
  }
  m_next_rescan = now + std::max(m_times.rescan_every, 100 * took);
}

// Every job the index keeps is skipped (its queue full or paused, or it waits for another
// job) while jobs of other queues wait on disk past the index's cut: they would wait for
// the skipped ones. The index is filled again without those, at most once a second (and
// at most 10% of the time, for a spool large enough to take long to scan). The jobs left
// out come back with the next scan: when the index runs out, and every minute; a job
// that waits for another is read again when that one finishes (see finished_job).
bool Worker::rescan_past_skipped(Micros now, const std::vector<std::string>& full) {
  if (!m_index.truncated() || m_index.ready_size() == 0 || now < m_next_starved_scan) {
    return false;
  }
  const ScanStats st = scan_waiting(m_spool, m_default_priority, now, m_index, [&](const IndexEntry& e) {
    return accepts(e) && m_blocked.count(e.id) == 0 && std::find(full.begin(), full.end(), e.queue) == full.end();
  });
  const Micros took = now_micros() - now;
  if (took > 1'000'000) {
    m_log(fmt::format("every job kept in memory waits (a full or paused queue, or a dependency): looked past them "
                      "through {} pending jobs in {:.1f} s",
                      st.pending, static_cast<double>(took) / 1e6));
  }
  m_next_starved_scan = now + std::max<Micros>(1'000'000, 10 * took);
  return true;
}

int Worker::poll_timeout(Micros now) const {
  Micros next = std::min({m_next_recover, m_next_rescan, m_next_sweep});
  if (const auto due = m_index.next_due(); due && !m_run) {
    next = std::min(next, *due);
  }
  if (m_slot_retry_at > 0 && !m_run) {
    next = std::min(next, m_slot_retry_at);
  }
  if (m_run) {
    if (!m_run->claim().start_recorded()) {
      next = std::min(next, m_run->started() + m_times.record_start_after);
    }
    if (const auto t = m_run->next_tick()) {
      next = std::min(next, *t);
    }
  }
  const Micros wait = next - now;
  if (wait <= 0) {
    return 0;
  }
  return static_cast<int>(std::min<Micros>((wait + 999) / 1000, 60'000));
}

// The supervisor's scan: says "watching" (the first byte on `ready_fd`), waits for the
// scan, and loads it. False when there is none to load (the supervisor could not scan).
bool Worker::load_handed(int ready_fd, IndexHandOver handed) {
  try {
    sys::write_all(ready_fd, "w", "the supervisor's readiness pipe");
    while (!sys::read_some(handed.go.get(), 64, "the supervisor's scan").empty()) {
    }
    // pread: the descriptor's offset is shared with the supervisor and the other workers.
    std::string text;
    for (std::string chunk;
         !(chunk = sys::read_at(handed.file.get(), 1 << 20, static_cast<off_t>(text.size()), "the supervisor's scan"))
              .empty();) {
      text += chunk;
    }
    if (m_index.load(text)) {
      m_index.remove_if([this](const IndexEntry& e) { return !serves(e.queue); });
      return true;
    }
  } catch (const Error& e) {
    m_log(e.what());
  }
  return false;
}

int Worker::run(int ready_fd, std::optional<IndexHandOver> handed) {
  setup_events(); // before the scan: a job that arrives during it is an event
  m_default_priority = config().job_defaults().priority;
  recover();
  sweep();
  const Micros t0 = now_micros();
  if (!(handed && ready_fd >= 0 && load_handed(ready_fd, std::move(*handed)))) {
    rescan(t0);
  } else {
    m_next_rescan = t0 + m_times.rescan_every;
  }
  m_tx.prepare_log();
  m_next_recover = t0 + m_times.recover_every;
  m_next_sweep = t0 + m_times.sweep_every;
  if (ready_fd >= 0) {
    Fd ready(ready_fd);
    sys::write_all(ready.get(), "r", "the supervisor's readiness pipe");
  }
  for (;;) {
    Micros now = now_micros();
    if (!m_run && !m_stopping) {
      start_next(now);
    }
    if (!m_run) {
      m_reg.set_job(std::nullopt); // idle (written only now: not between two jobs)
    }
    if (m_stopping && !m_run) {
      break;
    }
    now = now_micros();
    if (now >= m_next_recover) {
      recover();
      m_next_recover = now + m_times.recover_every;
    }
    if (m_rescan || now >= m_next_rescan) {
      rescan(now);
      if (!m_run && !m_stopping) {
        continue; // what the scan found (a queue resumed: its jobs) may start now
      }
    }
    if (now >= m_next_sweep) {
      if (!m_old_temps_swept) {
        m_spool.sweep_old_temps(); // lists every state directory: once, not in the way of the first jobs
        m_old_temps_swept = true;
      }
      sweep();
      m_next_sweep = now + m_times.sweep_every;
    }
    if (m_run) {
      if (!m_run->claim().start_recorded() && now >= m_run->started() + m_times.record_start_after) {
        record_start();
      }
      m_run->tick(now);
    }
    pollfd fds[] = {{m_watch->fd(), POLLIN, 0}, {m_signals->fd(), POLLIN, 0}, {m_waiters.fd(), POLLIN, 0}};
    sys::poll(fds, 3, poll_timeout(now_micros()));
    if (fds[0].revents & POLLIN) {
      drain_inotify(); // first: a config change it reports applies to a run ending now
      if (m_run && !m_watch->polling().empty()) {
        // A poll sees a request appear, but not `cancel` renewing it for a worker that was
        // still starting the job: at each look, the running job's request is looked for.
        cancel_if_requested();
      }
    }
    if (fds[1].revents & POLLIN) {
      drain_signals();
    }
    if (fds[2].revents & POLLIN) {
      recover_released();
    }
  }
  m_committer.close();
  sweep();
  return 0;
}

int run_worker(const std::filesystem::path& root, pid_t supervisor, int ready_fd, std::optional<IndexHandOver> handed,
               const LogSink& log, const std::vector<std::string>& queues) {
  sys::reset_ignored_signals();
  // A closed stderr must give EPIPE, not kill the worker; blocked, SIGPIPE never arrives.
  sys::block_signals(sys::signal_set({SIGPIPE}));
  Spool spool = Spool::open(root);
  Worker w(spool, supervisor, log, WorkerTimes{}, queues);
  return w.run(ready_fd, std::move(handed));
}

} // namespace queuectl
