#include "queuectl/lifecycle.hpp"

#include "queuectl/error.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>

namespace queuectl {

double backoff_seconds(std::int64_t attempts, double base, double max) {
  const double d = std::pow(base, static_cast<double>(attempts));
  return std::isfinite(d) ? std::min(d, max) : max;
}

StatsEvent stats_event(JobState to, std::optional<double> completed_seconds) {
  StatsEvent e;
  if (to == JobState::completed) {
    e.a = Counter::runs_completed;
    e.completed_seconds = completed_seconds;
  } else {
    e.a = Counter::runs_failed;
    e.b = to == JobState::failed ? Counter::jobs_retried : Counter::jobs_dead;
  }
  return e;
}

JobState record_run(Job& job, const RunResult& r, const Config& cfg, Micros now) {
  Json& j = job.json();
  j["exit_code"] = r.exit_code ? Json(*r.exit_code) : Json(nullptr);
  j.erase("next_run_at");
  if (r.error.empty()) {
    j["last_error"] = nullptr;
    return JobState::completed;
  }
  j["last_error"] = r.error;
  if (job.attempts() <= job.max_retries()) {
    const double delay = backoff_seconds(job.attempts(), cfg.backoff_base(), cfg.backoff_max());
    j["next_run_at"] = format_time(later_by(now, delay));
    return JobState::failed;
  }
  return JobState::dead;
}

void start_run(Job& job, const std::string& id, int fd, const JobDefaults& defaults, Micros now) {
  Json& j = job.json();
  if (!j.contains("id")) {
    j["id"] = id; // a drop-in without an id is named by its file
  }
  if (!j.contains("created_at")) {
    // A drop-in: it takes the spool's defaults now, as the contract says.
    struct stat st {};
    Micros created = now;
    if (::fstat(fd, &st) == 0) {
      created = sys::mtime_micros(st);
    }
    j["created_at"] = format_time(created);
  }
  job.fill_new(defaults, now);
  j["attempts"] = job.attempts() + 1;
}

namespace {

std::string file_of(const std::string& id) { return job_file(id); }

// Another state already holding this id (a duplicate drop-in, or a stale copy).
std::optional<JobState> elsewhere(const Spool& spool, const std::string& id, JobState here) {
  const std::string f = file_of(id);
  for (JobState s : k_all_states) {
    if (s != here && sys::exists_at(spool.dir(s), f, spool.path_of(s, f))) {
      return s;
    }
  }
  return std::nullopt;
}

} // namespace

ClaimOutcome claim_job(Spool& spool, const Config& cfg, const IndexEntry& e, Micros now,
                       std::optional<Claim>& out, Micros* due, Spares* spares) {
  auto locked = spool.lock_job(e.from, e.id);
  if (!locked) {
    return ClaimOutcome::gone;
  }
  const std::string file = file_of(e.id);
  Json j = Json::parse(locked->content, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::string why = "invalid JSON";
    try {
      Job::parse(locked->content); // parses again only to say where and why
    } catch (const Error& err) {
      why = err.what();
    }
    spool.quarantine(e.from, file, why, Json());
    return ClaimOutcome::quarantined;
  }
  Job job(j);
  try {
    job.validate();
    const auto it = j.find("id");
    if (it != j.end() && it->get<std::string>() != e.id) {
      bad_usage(fmt::format("id '{}' differs from the file name '{}'", it->get<std::string>(), file));
    }
  } catch (const Error& err) {
    spool.quarantine(e.from, file, err.what(), j);
    return ClaimOutcome::quarantined;
  }
  if (const auto other = elsewhere(spool, e.id, e.from)) {
    spool.quarantine(e.from, file,
                     fmt::format("a job with id '{}' already exists in {}/", e.id, state_dir(*other)), j);
    return ClaimOutcome::quarantined;
  }
  const auto when = e.from == JobState::failed ? job.time_field("next_run_at") : job.time_field("run_at");
  if (when && *when > now) {
    *due = *when;
    return ClaimOutcome::not_due;
  }
  start_run(job, e.id, locked->lock.get(), cfg.job_defaults(), now);
  spool.rename_job(*locked, JobState::processing);
  StagedRewrite staged = spool.stage_rewrite(*locked, job, spares);
  out = Claim{std::move(*locked), std::move(job), std::move(staged)};
  return ClaimOutcome::claimed;
}

namespace {

void remove_stale_temps_in(const Spool& spool, JobState s, Micros now) {
  std::vector<std::string> names;
  sys::for_each_entry(spool.dir(s), spool.path_of(s, ""), [&](std::string_view name, unsigned char) {
    if (name.size() > 5 && name[0] == '.' && name.substr(name.size() - 4) == ".tmp") {
      names.emplace_back(name);
    }
    return true;
  });
  for (const std::string& n : names) {
    const auto st = sys::stat_at(spool.dir(s), n, spool.path_of(s, n));
    if (!st) {
      continue;
    }
    const Micros mtime = static_cast<Micros>(st->st_mtim.tv_sec) * 1'000'000;
    if (now - mtime < 600'000'000) {
      continue; // maybe still being written
    }
    Fd fd(::openat(spool.dir(s), n.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd && sys::try_lock(fd.get(), true)) {
      ::unlinkat(spool.dir(s), n.c_str(), 0);
    }
  }
}

} // namespace

std::vector<Recovered> recover_abandoned(Spool& spool) {
  std::vector<Recovered> out;
  std::vector<std::string> ids;
  sys::for_each_entry(spool.dir(JobState::processing), spool.path_of(JobState::processing, ""),
                      [&](std::string_view name, unsigned char) {
                        if (auto id = id_of_file(name)) {
                          ids.push_back(std::move(*id));
                        }
                        return true;
                      });
  const Micros now = now_micros();
  if (!ids.empty()) {
    const Config cfg = spool.load_config();
    for (const std::string& id : ids) {
      std::optional<LockedJob> locked;
      try {
        locked = spool.lock_job(JobState::processing, id);
      } catch (const Error&) {
        continue; // not a regular file: never opened through, left where it is
      }
      if (!locked) {
        continue; // alive (or already moved on)
      }
      if (const auto other = elsewhere(spool, id, JobState::processing)) {
        // A crash between writing the job's next state and removing this copy.
        const int p = spool.dir(JobState::processing);
        const int d = spool.dir(*other);
        sys::rename_noreplace(p, log_file(id), d, log_file(id), spool.path_of(JobState::processing, log_file(id)), true);
        sys::unlink_at(p, job_file(id), spool.path_of(JobState::processing, job_file(id)));
        continue;
      }
      Json j = Json::parse(locked->content, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        spool.quarantine(JobState::processing, job_file(id), "invalid JSON (found abandoned in processing/)", Json());
        record_stats(spool, stats_event(JobState::dead, std::nullopt));
        out.push_back({id, JobState::dead});
        continue;
      }
      Job job(std::move(j));
      if (!job.run_recorded()) {
        // Claimed, its command started (or about to), the file not yet rewritten.
        start_run(job, id, locked->lock.get(), cfg.job_defaults(), now);
      }
      const JobState to = record_run(job, RunResult{std::nullopt, "worker died"}, cfg, now);
      spool.move(*locked, to, job, true);
      record_stats(spool, stats_event(to, std::nullopt));
      out.push_back({id, to});
    }
  }
  return out;
}

void remove_stale_temps(const Spool& spool) {
  const Micros now = now_micros();
  for (JobState s : k_all_states) {
    remove_stale_temps_in(spool, s, now);
  }
}

} // namespace queuectl
