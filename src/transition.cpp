#include "queuectl/transition.hpp"

#include "queuectl/error.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace queuectl {

double backoff_seconds(std::int64_t attempts, double base, double max) {
  const double d = std::pow(base, static_cast<double>(attempts));
  return std::isfinite(d) ? std::min(d, max) : max;
}

JobState record_run(Job& job, const RunResult& r, const Config& cfg, Micros now) {
  if (r.cancelled) { // no exit code of its own: `wait` says 1 (SPEC section 7)
    job.set_outcome(std::nullopt, r.error);
    job.mark_cancelled();
    return JobState::dead;
  }
  job.set_outcome(r.exit_code, r.error);
  if (r.error.empty()) {
    return JobState::completed;
  }
  if (job.attempts() <= job.max_retries()) {
    job.schedule_retry(later_by(now, backoff_seconds(job.attempts(), cfg.backoff_base(), cfg.backoff_max())));
    return JobState::failed;
  }
  return JobState::dead;
}

std::vector<int> Claimed::inherit_fds() const {
  std::vector<int> fds{m_locked.lock.get()};
  if (m_slot) {
    fds.push_back(m_slot.get());
  }
  if (m_staged.fd) {
    fds.push_back(m_staged.fd.get());
  }
  return fds;
}

namespace {

bool is_final(JobState s) {
  return s == JobState::held || s == JobState::failed || s == JobState::completed || s == JobState::dead;
}

// The content a claimed run's start record holds: a drop-in gets its id, created_at (its
// file's modification time) and the spool's defaults, as the contract says; the run counts.
void start_content(Job& job, const LockedJob& l, const JobDefaults& defaults, Micros now) {
  if (!job.written_by_queuectl()) {
    job.adopt_dropin(l.stem, sys::mtime_micros(sys::stat_of(l.lock.get(), "a job file")));
  }
  job.fill_new(defaults, now);
  job.count_run();
  job.set_state(JobState::processing);
  job.touch(now);
}

} // namespace

Transitions::~Transitions() {
  // A spare or log left by a crash instead is removed by Spool::sweep_tmp().
  if (!m_spare.empty()) {
    m_spool.tmp().remove_quietly(m_spare);
  }
  if (m_log) {
    m_spool.tmp().remove_quietly(m_log_name);
  }
}

void Transitions::prepare_log() {
  if (m_log) {
    return;
  }
  m_log_name = m_spool.temp_name("log");
  Fd fd = m_spool.tmp().try_open(m_log_name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, m_spool.file_mode());
  if (fd && sys::try_lock(fd.get(), true, m_log_name)) { // locked: never swept as a leftover
    m_log = std::move(fd);
  } else if (fd) {
    m_spool.tmp().remove_quietly(m_log_name);
  }
}

Fd Transitions::open_log(const std::string& stem) {
  const sys::Dir& pdir = m_spool.dir(JobState::processing);
  const std::string name = log_file(stem);
  if (m_log) {
    try {
      if (m_spool.tmp().move_noreplace(m_log_name, pdir, name)) {
        return std::move(m_log);
      }
      // The log of an earlier run is there (it moves with its job): append to it.
    } catch (const Error&) {
      m_log.reset(); // gone: a new one is made after this job
    }
  }
  return pdir.try_open(name, O_WRONLY | O_CREAT | O_APPEND, m_spool.file_mode());
}

TempFile Transitions::take_spare(std::string_view data) {
  const sys::Dir& tmp = m_spool.tmp();
  TempFile t{std::exchange(m_spare, {}), Fd()};
  if (!t.name.empty()) {
    // Our old descriptor may be shared with a command that has not exited; only a fresh
    // one that takes the lock proves nobody else holds this file.
    m_spare_old.reset();
    // Locked, it is ours unless a sweep removed it between our open and our lock: a file
    // with no name left would take the job's name in no rename.
    t.fd = tmp.try_open(t.name, O_RDWR | O_NONBLOCK);
    const auto usable = [&] {
      if (!sys::try_lock(t.fd.get(), true, tmp.path_of(t.name))) {
        return false;
      }
      const struct stat st = sys::stat_of(t.fd.get(), tmp.path_of(t.name));
      return S_ISREG(st.st_mode) && st.st_nlink > 0;
    };
    if (!t.fd || !usable()) {
      t.fd.reset();
      tmp.remove_quietly(t.name);
    }
  }
  const bool fresh = !t.fd; // a spare used again was locked above
  if (fresh) {
    t.name = m_spool.temp_name("spare");
    t.fd = tmp.create(t.name, {}, false, m_spool.file_mode(), true);
  }
  const std::string display = tmp.path_of(t.name);
  try {
    if (fresh) {
      // Locked before it can ever take a job's name, so that name is never unlocked.
      sys::lock(t.fd.get(), true, display);
    }
    // Overwritten in place, then cut to size: the file keeps its blocks, so nothing is
    // freed and allocated again.
    sys::write_all(t.fd.get(), data, display);
    sys::truncate(t.fd.get(), static_cast<off_t>(data.size()), display);
  } catch (const Error&) {
    tmp.remove_quietly(t.name);
    throw;
  }
  return t;
}

void Transitions::give_back(std::string name, Fd old_lock) {
  if (!m_spare.empty()) {
    m_spool.tmp().remove_quietly(name);
    return;
  }
  m_spare = std::move(name);
  m_spare_old = std::move(old_lock);
}

void Transitions::exchange(LockedJob& j, TempFile t, std::string content) {
  const sys::Dir& tmp = m_spool.tmp();
  const sys::Dir& d = m_spool.dir(j.state);
  const std::string f = job_file(j.stem);
  bool exchanged = false;
  try {
    // The data first: a crash then leaves the old content or the new, never a torn file.
    sys::sync_data(t.fd.get(), tmp.path_of(t.name));
    if (!m_no_exchange) {
      exchanged = tmp.exchange(t.name, d, f);
      m_no_exchange = !exchanged; // this file system cannot: plain renames from now on
    }
    if (!exchanged) {
      tmp.move_over(t.name, d, f);
    }
  } catch (...) {
    tmp.remove_quietly(t.name);
    throw;
  }
  if (exchanged) {
    give_back(std::move(t.name), std::move(j.lock)); // the old inode is the spare now
  } // else the spare became the job; the old inode is gone, and its lock with it
  j.lock = std::move(t.fd);
  j.content = std::move(content);
}

void Transitions::rewrite(LockedJob& j, const Job& job) {
  std::string content = job.dump();
  TempFile t = take_spare(content);
  exchange(j, std::move(t), std::move(content));
}

void Transitions::rename(LockedJob& j, JobState to) const {
  if (to == j.state) {
    return;
  }
  const sys::Dir& from_d = m_spool.dir(j.state);
  const sys::Dir& to_d = m_spool.dir(to);
  const std::string f = job_file(j.stem);
  const std::string l = log_file(j.stem);
  // The log first: if we die between the two renames, the job is still where it was
  // and `logs` finds the log by looking in every state directory.
  const bool log_moved = from_d.move_noreplace(l, to_d, l, true);
  if (!from_d.move_noreplace(f, to_d, f)) {
    if (log_moved) {
      to_d.move_noreplace(l, from_d, l); // the log goes back with its job
    }
    fail(fmt::format("cannot move job '{}' to {}/: a job with that id is already there", j.stem, state_dir(to)));
  }
  j.state = to;
}

void Transitions::sync(JobState s) const {
  m_spool.sync_dir(s);
}

void Transitions::remove(LockedJob& j) {
  const sys::Dir& d = m_spool.dir(j.state);
  std::string why;
  if (const std::optional<Job> job = Job::try_parse(j.content, why)) {
    // Only a name of this directory that looks like a quarantined original.
    const std::string orig = job->text("original_file");
    if (orig.size() > 5 && orig.find('/') == std::string::npos && orig.substr(orig.size() - 5) == ".orig") {
      d.remove(orig);
    }
  }
  d.remove(log_file(j.stem));
  d.remove(job_file(j.stem));
}

std::string Transitions::quarantine(LockedJob& j, const std::string& why, const Json& fields) {
  const sys::Dir& dead = m_spool.dir(JobState::dead);
  const std::string file = job_file(j.stem);
  std::string orig = file + ".orig";
  for (int n = 1; dead.exists(orig); ++n) {
    orig = fmt::format("{}.{}.orig", file, n);
  }
  // The record takes the file's name when that is a valid id naming no other job; a
  // record of this very file, written before a crash cut this short, is used again.
  std::string rid;
  bool written = false;
  if (valid_id(j.stem)) {
    if (const auto at = m_spool.find(j.stem, j.state); !at) {
      rid = j.stem;
    } else if (*at == JobState::dead) {
      std::string ignored;
      const auto text = dead.read_file(file);
      const std::optional<Job> rec = text ? Job::try_parse(*text, ignored) : std::nullopt;
      if (rec && rec->text("original_file") == orig) {
        rid = j.stem;
        written = true;
      }
    }
  }
  if (rid.empty()) {
    rid = generate_id();
  }
  if (!written) {
    const Job rec = Job::quarantine_record(fields, rid, why, orig, now_micros());
    // The record first, durably: until the original moves, the job is in its directory
    // and in dead/ as its record; never in none.
    const std::string tmp = m_spool.temp_name("record");
    Fd fd = m_spool.tmp().create(tmp, rec.dump(), true, m_spool.file_mode());
    fd.reset();
    if (!m_spool.tmp().move_noreplace(tmp, dead, job_file(rid))) {
      m_spool.tmp().remove_quietly(tmp);
      fail(fmt::format("cannot write dead-letter record '{}': it exists",
                       m_spool.path_of(JobState::dead, job_file(rid))));
    }
    sync(JobState::dead);
  }
  const sys::Dir& from = m_spool.dir(j.state);
  const std::string log = log_file(j.stem);
  if (valid_id(j.stem) && rid == j.stem) {
    from.move_noreplace(log, dead, log, true);
  }
  if (!from.move_noreplace(file, dead, orig)) {
    fail(fmt::format("cannot move '{}' to dead/: '{}' exists", m_spool.path_of(j.state, file), orig));
  }
  sync(JobState::dead);
  j.state = JobState::dead;
  return rid;
}

ClaimResult Transitions::resolve(LockedJob& j, JobState to) {
  ClaimResult r;
  try {
    rename(j, to);
  } catch (const Error& e) {
    r.status = ClaimResult::quarantined;
    r.note = e.what();
    quarantine(j, e.what(), salvage_members(j.content));
    return r;
  }
  sync(to);
  r.status = ClaimResult::resolved;
  r.note = fmt::format("finished moving job {} to {}/ (a move cut short)", j.stem, state_dir(to));
  return r;
}

ClaimResult Transitions::claim(JobState from, const std::string& stem, const Config& cfg, Micros now) {
  ClaimResult r;
  bool busy = false;
  std::optional<LockedJob> l = m_spool.lock_job(from, stem, &busy);
  if (!l) {
    r.status = busy ? ClaimResult::busy : ClaimResult::gone;
    return r;
  }
  const auto quarantined = [&](const std::string& why, const Json& fields) {
    r.status = ClaimResult::quarantined;
    r.note = why;
    quarantine(*l, why, fields);
    return std::move(r);
  };
  if (l->size > k_max_job_file) {
    return quarantined(fmt::format("the file is larger than {} MiB", k_max_job_file >> 20), Json());
  }
  std::string why;
  std::optional<Job> job = Job::try_parse(l->content, why);
  if (!job) {
    return quarantined(why, salvage_members(l->content));
  }
  if (!valid_id(stem)) {
    return quarantined(fmt::format("the file name '{}' is not a valid job id: {}", job_file(stem), k_id_rule),
                       job->json());
  }
  const bool ours = job->written_by_queuectl();
  if (const auto st = job->state(); ours && from == JobState::pending && st && is_final(*st)) {
    return resolve(*l, *st);
  }
  try {
    job->validate();
    if (!ours) {
      if (const auto it = job->json().find("id"); it != job->json().end() && *it != stem) {
        bad_usage(fmt::format("id '{}' differs from the file name '{}'", it->get<std::string>(), job_file(stem)));
      }
      job->check_new();
    }
  } catch (const Error& e) {
    return quarantined(e.what(), job->json());
  }
  if (!ours) {
    if (const auto other = m_spool.find(stem, from)) {
      return quarantined(fmt::format("a job with id '{}' already exists in {}/", stem, state_dir(*other)), job->json());
    }
  }
  if (const auto due = job->due_at(); due && *due > now) {
    r.status = ClaimResult::not_due;
    r.due = *due;
    return r;
  }
  for (const std::string& dep : job->after()) {
    if (dep == stem) {
      return quarantined(fmt::format("it comes after itself (field 'after')"), job->json());
    }
    // A job that is nowhere was purged after it finished: it counts as completed.
    const auto at = m_spool.locate(dep);
    if (!at || *at == JobState::completed) {
      continue;
    }
    r.note = dep;
    if (*at != JobState::dead) {
      r.status = ClaimResult::blocked;
      return r;
    }
    // It never runs. From failed/ it passes through pending/ (see the header).
    rename(*l, JobState::pending);
    if (!ours) {
      job->adopt_dropin(stem, sys::mtime_micros(sys::stat_of(l->lock.get(), "a job file")));
      job->fill_new(cfg.job_defaults(), now);
    }
    job->mark_dependency_failed(dep);
    job->set_state(JobState::dead);
    job->touch(now);
    rewrite(*l, *job);
    rename(*l, JobState::dead);
    sync(JobState::dead);
    r.status = ClaimResult::dependency_failed;
    return r;
  }
  if (from == JobState::failed) {
    // Requeued: back to pending/ with its content saying so, then claimed from there, so
    // that a claimed file's content always says "pending" (see the header comment).
    rename(*l, JobState::pending);
    job->set_state(JobState::pending);
    job->clear_retry_time();
    job->touch(now);
    rewrite(*l, *job);
  }
  start_content(*job, *l, cfg.job_defaults(), now);
  rename(*l, JobState::processing);
  Claimed c;
  try {
    // Written now, while nothing waits, and put in place only if the run lasts.
    c.m_staged = take_spare(job->dump());
  } catch (const Error&) {
    // record_start() then writes it in full
  }
  c.m_log = open_log(stem);
  c.m_locked = std::move(*l);
  c.m_job = std::move(*job);
  r.status = ClaimResult::claimed;
  r.job = std::move(c);
  return r;
}

void Transitions::record_start(Claimed& c) {
  if (c.m_recorded) {
    return;
  }
  c.m_recorded = true;
  std::string content = c.m_job.dump();
  TempFile t = c.m_staged.fd ? std::move(c.m_staged) : take_spare(content);
  exchange(c.m_locked, std::move(t), std::move(content));
}

Outcome Transitions::conclude(Claimed c, const RunResult& r, const Config& cfg, Micros now) {
  Job job = c.m_job;
  const JobState to = record_run(job, r, cfg, now);
  job.set_state(to);
  job.touch(now);
  // The start record, never put in place, is the claimer's spare again: its lock (shared
  // with the command, which has exited) goes now so that the next claim can refill it.
  if (c.m_staged.fd) {
    give_back(std::move(c.m_staged.name), Fd());
    c.m_staged.fd.reset();
  }
  return Outcome{std::move(c), std::move(job), to};
}

void Transitions::commit(Outcome& o) {
  rewrite(o.claimed.m_locked, o.job);
  rename(o.claimed.m_locked, o.to);
}

std::optional<Recovered> Transitions::recover_locked(LockedJob l, const std::string& reason) {
  const Micros now = now_micros();
  std::string why;
  std::optional<Job> job = l.size > k_max_job_file ? std::nullopt : Job::try_parse(l.content, why);
  if (!job) {
    const std::string rid =
        quarantine(l, fmt::format("{} (found abandoned in processing/)", why.empty() ? "too large" : why),
                   salvage_members(l.content));
    return Recovered{rid, JobState::dead};
  }
  const auto st = job->state();
  if (st && is_final(*st)) {
    // The outcome was written; the move into its directory was not made.
    try {
      rename(l, *st);
    } catch (const Error& e) {
      return Recovered{quarantine(l, e.what(), job->json()), JobState::dead};
    }
    sync(*st);
    return Recovered{l.stem, *st};
  }
  const Config cfg = m_spool.load_config();
  if (!st || *st == JobState::pending) {
    start_content(*job, l, cfg.job_defaults(), now); // the claim's run, not yet written
  }
  const bool cancelled = cancel_requested(m_spool, l.stem);
  const JobState to = record_run(*job, RunResult{std::nullopt, cancelled ? "cancelled" : reason, cancelled}, cfg, now);
  job->set_state(to);
  job->touch(now);
  rewrite(l, *job);
  rename(l, to);
  sync(to);
  return Recovered{l.stem, to};
}

std::vector<Recovered> Transitions::recover(const std::string& reason, std::vector<std::string>* held) {
  std::vector<std::string> ids;
  m_spool.for_each_job(JobState::processing, [&](std::string_view stem) {
    if (valid_id(stem)) { // only claims put files here, and a claim takes valid ids only
      ids.emplace_back(stem);
    }
  });
  std::vector<Recovered> out;
  for (const std::string& id : ids) {
    std::optional<LockedJob> l;
    bool busy = false;
    try {
      l = m_spool.lock_job(JobState::processing, id, &busy);
    } catch (const Error&) {
      continue; // not a regular file: never opened through, left where it is
    }
    if (busy && held) {
      held->push_back(id);
    }
    if (l) {
      if (auto r = recover_locked(std::move(*l), reason)) {
        out.push_back(std::move(*r));
      }
    }
  }
  return out;
}

namespace {

// Locks `id` in whichever state holds it, among `allowed`. Error(failure) with a message
// built by `refuse(state)` when it is elsewhere, "no such job" when nowhere.
template <class Refuse>
std::pair<LockedJob, Job> lock_for(const Spool& spool, const std::string& id, const std::vector<JobState>& allowed,
                                   const char* verb, Refuse refuse) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const StoredJob sj = spool.load(id);
    if (std::find(allowed.begin(), allowed.end(), sj.state) == allowed.end()) {
      refuse(sj);
    }
    if (auto l = spool.lock_job(sj.state, id)) {
      std::string why;
      std::optional<Job> job = Job::try_parse(l->content, why);
      if (!job) {
        fail(fmt::format("cannot {} job '{}': its file is not a valid job: {}", verb, id, why));
      }
      return {std::move(*l), std::move(*job)};
    }
    // a worker is claiming it, or it just moved: look again
  }
  fail(fmt::format("cannot {} job '{}': a worker is claiming it right now; try again", verb, id));
}

} // namespace

void Transitions::cancel(const std::string& id) {
  auto [l, job] =
      lock_for(m_spool, id, {JobState::pending, JobState::held, JobState::failed}, "cancel", [&](const StoredJob& sj) {
        fail(fmt::format("cannot cancel job '{}': it is {} (only pending, held and failed jobs "
                         "can be cancelled)",
                         id, state_name(sj.state)));
      });
  // failed/, held/ and dead/ are final: the job passes through pending/ (see the header).
  rename(l, JobState::pending);
  job.mark_cancelled();
  job.set_state(JobState::dead);
  job.touch(now_micros());
  rewrite(l, job);
  rename(l, JobState::dead);
  sync(JobState::dead);
}

void Transitions::retry(const std::string& id, bool dead_only) {
  const std::vector<JobState> allowed =
      dead_only ? std::vector<JobState>{JobState::dead} : std::vector<JobState>{JobState::completed, JobState::dead};
  auto [l, job] = lock_for(m_spool, id, allowed, "retry", [&](const StoredJob& sj) {
    fail(dead_only ? fmt::format("cannot retry job '{}': it is {}, not dead", id, state_name(sj.state))
                   : fmt::format("cannot retry job '{}': it is {} (only completed and dead jobs can be retried)", id,
                                 state_name(sj.state)));
  });
  if (job.json().contains("original_file")) {
    fail(fmt::format("cannot retry job '{}': it was an invalid file ({}); fix it and enqueue it again", id,
                     m_spool.path_of(JobState::dead, job.text("original_file"))));
  }
  rename(l, JobState::pending);
  job.reset_for_retry();
  job.set_state(JobState::pending);
  job.touch(now_micros());
  rewrite(l, job);
  sync(JobState::pending);
}

void Transitions::purge(const std::string& id) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const StoredJob sj = m_spool.load(id);
    if (sj.state != JobState::completed && sj.state != JobState::dead) {
      fail(fmt::format("cannot purge job '{}': it is {} (only completed and dead jobs can be purged; cancel it first)",
                       id, state_name(sj.state)));
    }
    // Not parsed: a damaged file in dead/ can be purged by its name too.
    if (auto l = m_spool.lock_job(sj.state, id)) {
      remove(*l);
      sync(sj.state);
      return;
    }
    // retried, or purged, by someone else right now: look again
  }
  fail(fmt::format("cannot purge job '{}': another command holds it right now; try again", id));
}

void Transitions::fail_dependent(const std::string& id, const std::string& dep) {
  auto [l, job] =
      lock_for(m_spool, id, {JobState::pending, JobState::held, JobState::failed}, "fail",
               [&](const StoredJob& sj) { fail(fmt::format("job '{}' is {} now", id, state_name(sj.state))); });
  // failed/ and held/ are final: the job passes through pending/ (see the header).
  rename(l, JobState::pending);
  job.mark_dependency_failed(dep);
  job.set_state(JobState::dead);
  job.touch(now_micros());
  rewrite(l, job);
  rename(l, JobState::dead);
  sync(JobState::dead);
}

void Transitions::hold(const std::string& id) {
  auto [l, job] = lock_for(m_spool, id, {JobState::pending, JobState::failed}, "hold", [&](const StoredJob& sj) {
    fail(fmt::format("cannot hold job '{}': it is {} (only pending and failed jobs can be held)", id,
                     state_name(sj.state)));
  });
  rename(l, JobState::pending); // failed/ and held/ are final: through pending/ (see the header)
  if (!job.written_by_queuectl()) {
    // A drop-in no worker has taken: checked as a claim would, and made queuectl's own
    // (its id, created_at, the defaults), so that a crash between the rewrite and the
    // move leaves a file that resolves to held/.
    try {
      job.validate();
      job.check_new();
      if (const auto it = job.json().find("id"); it != job.json().end() && *it != id) {
        bad_usage(fmt::format("id '{}' differs from the file name '{}'", it->get<std::string>(), job_file(id)));
      }
      if (const auto other = m_spool.find(id, JobState::pending)) {
        bad_usage(fmt::format("a job with id '{}' already exists in {}/", id, state_dir(*other)));
      }
    } catch (const Error& e) {
      fail(fmt::format("cannot hold job '{}': its file is not a valid job: {} (a worker will move it to dead/)", id,
                       e.what()));
    }
    job.adopt_dropin(id, sys::mtime_micros(sys::stat_of(l.lock.get(), "a job file")));
    job.fill_new(m_spool.load_config().job_defaults(), now_micros());
  }
  job.set_state(JobState::held);
  job.touch(now_micros());
  rewrite(l, job);
  rename(l, JobState::held);
  sync(JobState::held);
}

void Transitions::release(const std::string& id) {
  auto [l, job] = lock_for(m_spool, id, {JobState::held}, "release", [&](const StoredJob& sj) {
    fail(fmt::format("cannot release job '{}': it is {}, not held", id, state_name(sj.state)));
  });
  rename(l, JobState::pending);
  job.clear_retry_time();
  job.set_state(JobState::pending);
  job.touch(now_micros());
  rewrite(l, job);
  sync(JobState::pending);
}

} // namespace queuectl
