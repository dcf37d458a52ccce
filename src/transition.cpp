#include "queuectl/transition.hpp"

#include "queuectl/error.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace queuectl {

double backoff_seconds(std::int64_t attempts, double base, double max) {
  const double d = std::pow(base, static_cast<double>(attempts));
  return std::isfinite(d) ? std::min(d, max) : max;
}

JobState record_run(Job& job, const RunResult& r, const Config& cfg, Micros now) {
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
  if (m_staged.fd) {
    fds.push_back(m_staged.fd.get());
  }
  return fds;
}

namespace {

bool is_final(JobState s) { return s == JobState::failed || s == JobState::completed || s == JobState::dead; }

// The content a claimed run's start record holds: a drop-in gets its id, created_at (its
// file's modification time) and the spool's defaults, as the contract says; the run counts.
void start_content(Job& job, const LockedJob& l, const JobDefaults& defaults, Micros now) {
  Json& j = job.json();
  if (!job.written_by_queuectl()) {
    if (!j.contains("id")) {
      j["id"] = l.stem;
    }
    struct stat st {};
    j["created_at"] = format_time(::fstat(l.lock.get(), &st) == 0 ? sys::mtime_micros(st) : now);
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
    ::unlinkat(m_spool.tmp_dir(), m_spare.c_str(), 0);
  }
  if (m_log) {
    ::unlinkat(m_spool.tmp_dir(), m_log_name.c_str(), 0);
  }
}

void Transitions::prepare_log() {
  if (m_log) {
    return;
  }
  m_log_name = m_spool.temp_name("log");
  Fd fd(::openat(m_spool.tmp_dir(), m_log_name.c_str(),
                 O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, m_spool.file_mode()));
  if (fd && sys::try_lock(fd.get(), true)) { // locked: never swept as a leftover
    m_log = std::move(fd);
  } else if (fd) {
    ::unlinkat(m_spool.tmp_dir(), m_log_name.c_str(), 0);
  }
}

Fd Transitions::open_log(const std::string& stem) {
  const int pdir = m_spool.dir(JobState::processing);
  const std::string name = log_file(stem);
  if (m_log) {
    if (::renameat2(m_spool.tmp_dir(), m_log_name.c_str(), pdir, name.c_str(), RENAME_NOREPLACE) == 0) {
      return std::move(m_log);
    }
    if (errno != EEXIST) {
      m_log.reset(); // gone: a new one is made after this job
    }
  }
  // The log of an earlier run (it moves with its job), or no ready one: append.
  return Fd(::openat(pdir, name.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, m_spool.file_mode()));
}

TempFile Transitions::take_spare(std::string_view data) {
  const int tmp = m_spool.tmp_dir();
  TempFile t{std::exchange(m_spare, {}), Fd()};
  if (!t.name.empty()) {
    // Our old descriptor may be shared with a command that has not exited; only a fresh
    // one that takes the lock proves nobody else holds this file.
    m_spare_old.reset();
    t.fd = Fd(::openat(tmp, t.name.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    struct stat st {};
    if (!t.fd || !sys::try_lock(t.fd.get(), true) || ::fstat(t.fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      t.fd.reset();
      ::unlinkat(tmp, t.name.c_str(), 0);
    }
  }
  if (!t.fd) {
    t.name = m_spool.temp_name("spare");
    t.fd = sys::create_file_at(tmp, t.name, {}, false, m_spool.path_of("tmp", t.name), m_spool.file_mode(), true);
  }
  const std::string display = m_spool.path_of("tmp", t.name);
  try {
    // Locked before it can ever take a job's name, so that name is never unlocked.
    sys::lock(t.fd.get(), true);
    // Overwritten in place, then cut to size: the file keeps its blocks, so nothing is
    // freed and allocated again.
    sys::write_all(t.fd.get(), data, display);
    if (::ftruncate(t.fd.get(), static_cast<off_t>(data.size())) != 0) {
      throw_errno("cannot truncate", display);
    }
  } catch (const Error&) {
    ::unlinkat(tmp, t.name.c_str(), 0);
    throw;
  }
  return t;
}

void Transitions::give_back(std::string name, Fd old_lock) {
  if (!m_spare.empty()) {
    ::unlinkat(m_spool.tmp_dir(), name.c_str(), 0);
    return;
  }
  m_spare = std::move(name);
  m_spare_old = std::move(old_lock);
}

void Transitions::exchange(LockedJob& j, TempFile t, std::string content) {
  const int tmp = m_spool.tmp_dir();
  const int d = m_spool.dir(j.state);
  const std::string f = job_file(j.stem);
  bool exchanged = false;
  try {
    // The data first: a crash then leaves the old content or the new, never a torn file.
    if (::fdatasync(t.fd.get()) != 0) {
      throw_errno("cannot sync", m_spool.path_of("tmp", t.name));
    }
    if (!m_no_exchange) {
      if (::renameat2(tmp, t.name.c_str(), d, f.c_str(), RENAME_EXCHANGE) == 0) {
        exchanged = true;
      } else if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
        m_no_exchange = true; // this file system: plain renames from now on
      } else {
        throw_errno("cannot replace", m_spool.path_of(j.state, f));
      }
    }
    if (!exchanged && ::renameat(tmp, t.name.c_str(), d, f.c_str()) != 0) {
      throw_errno("cannot replace", m_spool.path_of(j.state, f));
    }
  } catch (...) {
    ::unlinkat(tmp, t.name.c_str(), 0);
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
  const int from_d = m_spool.dir(j.state);
  const int to_d = m_spool.dir(to);
  const std::string f = job_file(j.stem);
  const std::string l = log_file(j.stem);
  // The log first: if we die between the two renames, the job is still where it was
  // and `logs` finds the log by looking in every state directory.
  const bool log_moved = sys::rename_noreplace(from_d, l, to_d, l, m_spool.path_of(j.state, l), true);
  if (!sys::rename_noreplace(from_d, f, to_d, f, m_spool.path_of(j.state, f))) {
    if (log_moved && ::renameat2(to_d, l.c_str(), from_d, l.c_str(), RENAME_NOREPLACE) != 0) {
      throw_errno("cannot move back", m_spool.path_of(to, l));
    }
    fail(fmt::format("cannot move job '{}' to {}/: a job with that id is already there", j.stem, state_dir(to)));
  }
  j.state = to;
}

void Transitions::sync(JobState s) const { m_spool.sync_dir(s); }

void Transitions::remove(LockedJob& j) {
  const int d = m_spool.dir(j.state);
  std::string why;
  if (const std::optional<Job> job = Job::try_parse(j.content, why)) {
    // Only a name of this directory that looks like a quarantined original.
    const std::string orig = job->text("original_file");
    if (orig.size() > 5 && orig.find('/') == std::string::npos && orig.substr(orig.size() - 5) == ".orig") {
      sys::unlink_at(d, orig, m_spool.path_of(j.state, orig));
    }
  }
  sys::unlink_at(d, log_file(j.stem), m_spool.path_of(j.state, log_file(j.stem)));
  sys::unlink_at(d, job_file(j.stem), m_spool.path_of(j.state, job_file(j.stem)));
}

std::string Transitions::quarantine(LockedJob& j, const std::string& why, const Json& fields) {
  const int dead = m_spool.dir(JobState::dead);
  const std::string file = job_file(j.stem);
  std::string orig = file + ".orig";
  for (int n = 1; sys::exists_at(dead, orig, m_spool.path_of(JobState::dead, orig)); ++n) {
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
      const auto text = sys::read_file_at(dead, file, m_spool.path_of(JobState::dead, file));
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
    Json rec = fields.is_object() ? fields : Json::object();
    const Micros now = now_micros();
    if (const auto it = rec.find("created_at"); it == rec.end() || !it->is_string() || !parse_time(it->get<std::string>())) {
      rec["created_at"] = format_time(now);
    }
    rec["id"] = rid;
    rec["state"] = "dead";
    rec["updated_at"] = format_time(now);
    rec["last_error"] = why;
    rec["original_file"] = orig;
    rec.erase("next_run_at");
    // The record first, durably: until the original moves, the job is in its directory
    // and in dead/ as its record; never in none.
    const std::string tmp = m_spool.temp_name("record");
    Fd fd = sys::create_file_at(m_spool.tmp_dir(), tmp, Job(rec).dump(), true, m_spool.path_of("tmp", tmp),
                                m_spool.file_mode());
    fd.reset();
    if (!sys::rename_noreplace(m_spool.tmp_dir(), tmp, dead, job_file(rid), m_spool.path_of(JobState::dead, job_file(rid)))) {
      ::unlinkat(m_spool.tmp_dir(), tmp.c_str(), 0);
      fail(fmt::format("cannot write dead-letter record '{}': it exists", m_spool.path_of(JobState::dead, job_file(rid))));
    }
    sync(JobState::dead);
  }
  const int from = m_spool.dir(j.state);
  const std::string log = log_file(j.stem);
  if (valid_id(j.stem) && rid == j.stem) {
    sys::rename_noreplace(from, log, dead, log, m_spool.path_of(j.state, log), true);
  }
  if (!sys::rename_noreplace(from, file, dead, orig, m_spool.path_of(j.state, file))) {
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
  std::optional<LockedJob> l = m_spool.lock_job(from, stem);
  if (!l) {
    return r; // gone
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
    const std::string rid = quarantine(l, fmt::format("{} (found abandoned in processing/)", why.empty() ? "too large" : why),
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
  const JobState to = record_run(*job, RunResult{std::nullopt, reason}, cfg, now);
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
std::pair<LockedJob, Job> lock_for(const Spool& spool, const std::string& id, std::initializer_list<JobState> allowed,
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
  auto [l, job] = lock_for(m_spool, id, {JobState::pending, JobState::failed}, "cancel", [&](const StoredJob& sj) {
    fail(fmt::format("cannot cancel job '{}': it is {} (only pending and failed jobs can be cancelled)", id,
                     state_name(sj.state)));
  });
  // failed/ and dead/ are both final: the job passes through pending/ (see the header).
  rename(l, JobState::pending);
  job.mark_cancelled();
  job.set_state(JobState::dead);
  job.touch(now_micros());
  rewrite(l, job);
  rename(l, JobState::dead);
  sync(JobState::dead);
}

void Transitions::retry(const std::string& id) {
  auto [l, job] = lock_for(m_spool, id, {JobState::dead}, "retry", [&](const StoredJob& sj) {
    fail(fmt::format("cannot retry job '{}': it is {}, not dead", id, state_name(sj.state)));
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

} // namespace queuectl
