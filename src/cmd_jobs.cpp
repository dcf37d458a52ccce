// status, list, show, logs, cancel, dlq retry and purge: what the faces ask of jobs.
#include "queuectl/commands.hpp"
#include "queuectl/counters.hpp"
#include "queuectl/error.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/supervisor.hpp"
#include "queuectl/sys.hpp"
#include "queuectl/transition.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

namespace queuectl::cmd {

Json status(const Spool& spool) {
  const auto c = spool.counts();
  Json j = Json::object();
  for (JobState s : k_all_states) {
    j[std::string(state_name(s))] = c[static_cast<std::size_t>(s)];
  }
  j["workers"] = live_worker_count(spool);
  return j;
}

std::vector<StoredJob> list(const Spool& spool, std::optional<JobState> state, std::size_t max) {
  return state ? spool.list(*state, max) : spool.list_all(max);
}

namespace {

bool contains_text(std::string_view hay, std::string_view needle) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                     [&](char a, char b) { return lower(a) == lower(b); }) != hay.end();
}

bool matches_text(const Job& job, std::string_view text) {
  if (contains_text(job.id(), text) || contains_text(job.command(), text)) {
    return true;
  }
  const auto tags = job.tags();
  return std::any_of(tags.begin(), tags.end(), [&](const std::string& t) { return contains_text(t, text); });
}

} // namespace

std::vector<StoredJob> list(const Spool& spool, const JobFilter& f) {
  if (!f.queue && !f.tag && !f.text) {
    return list(spool, f.state, f.max);
  }
  std::vector<StoredJob> all = list(spool, f.state, SIZE_MAX);
  std::vector<StoredJob> out;
  for (StoredJob& sj : all) {
    if (out.size() >= f.max) {
      break;
    }
    if ((!f.queue || sj.job.queue() == *f.queue) && (!f.tag || sj.job.has_tag(*f.tag)) &&
        (!f.text || matches_text(sj.job, *f.text))) {
      out.push_back(std::move(sj));
    }
  }
  return out;
}

std::vector<std::string> waits_for(const Spool& spool, const StoredJob& sj) {
  std::vector<std::string> out;
  if (sj.state != JobState::pending && sj.state != JobState::held) {
    return out;
  }
  for (const std::string& dep : sj.job.after()) {
    if (const auto at = spool.locate(dep); at && *at != JobState::completed) {
      out.push_back(dep);
    }
  }
  return out;
}

Json jobs_json(const std::vector<StoredJob>& jobs) {
  Json arr = Json::array();
  for (const StoredJob& sj : jobs) {
    arr.push_back(sj.job.json());
  }
  return arr;
}

Json show(const Spool& spool, const std::string& id) {
  return spool.load(id).job.json();
}

std::string log_text(const Spool& spool, const std::string& id) {
  if (const Fd log = spool.open_log(id)) {
    return sys::read_all(log.get(), log_file(id));
  }
  if (!spool.find(id)) {
    throw NotFound(fmt::format("no such job '{}'", id));
  }
  return {};
}

LogSlice log_slice(const Spool& spool, const std::string& id, std::uint64_t from, std::optional<std::uint64_t> tail) {
  const Fd log = spool.open_log(id);
  if (!log) {
    if (!spool.find(id)) {
      throw NotFound(fmt::format("no such job '{}'", id));
    }
    return {};
  }
  const auto size = static_cast<std::uint64_t>(sys::stat_of(log.get(), log_file(id)).st_size);
  LogSlice out;
  out.size = size;
  out.offset = std::min(from, size);
  if (tail && size - out.offset > *tail) {
    out.offset = size - *tail;
  }
  // Only what was there at the fstat: a line being written is read on the next call.
  out.text = sys::read_at(log.get(), size - out.offset, static_cast<off_t>(out.offset), log_file(id));
  return out;
}

void cancel(const Spool& spool, const std::string& id) {
  // A job may move between the look and the lock (claimed, or finished): look again.
  for (int attempt = 0;; ++attempt) {
    std::optional<JobState> st = spool.locate(id);
    if (st == JobState::processing) {
      st = cancel_running(spool, id);
      if (st == JobState::dead) {
        const auto sj = spool.try_load(id);
        if (sj && sj->job.text("last_error") != "cancelled") {
          fail(fmt::format("cannot cancel job '{}': it ended before it could be cancelled ({}), and is dead", id,
                           sj->job.text("last_error")));
        }
        return; // its worker (or the recovery) moved it and counted it
      }
      if (st == JobState::completed) {
        fail(fmt::format("cannot cancel job '{}': it completed before it could be ended", id));
      }
    }
    try {
      Transitions(spool).cancel(id);
      Counters(spool).add(count_one(Counter::jobs_dead));
      return;
    } catch (const Error&) {
      if (attempt == 2 || spool.locate(id) != JobState::processing) {
        throw;
      }
    }
  }
}

void hold(const Spool& spool, const std::string& id) {
  Transitions(spool).hold(id);
}

void release(const Spool& spool, const std::string& id) {
  Transitions(spool).release(id);
}

void retry(const Spool& spool, const std::string& id) {
  Transitions(spool).retry(id, false);
  Counters(spool).add(count_one(Counter::jobs_retried));
}

std::vector<std::string> retry_dead(const Spool& spool, const std::vector<std::string>& ids, bool all) {
  std::vector<std::string> which = ids;
  if (all) {
    for (const StoredJob& sj : spool.list(JobState::dead)) {
      if (!sj.job.json().contains("original_file") && !sj.job.json().contains("invalid")) {
        which.push_back(sj.job.id());
      }
    }
  }
  Transitions tx(spool);
  Counters counters(spool);
  std::vector<std::string> retried;
  for (const std::string& id : which) {
    try {
      tx.retry(id, true);
    } catch (const Error&) {
      if (!all) {
        throw;
      }
      continue; // retried or purged by someone else since the listing
    }
    counters.add(count_one(Counter::jobs_retried));
    retried.push_back(id);
  }
  return retried;
}

namespace {

// A job that comes after a dead job would run once that job is purged (a purged job
// counts as completed). Before dead jobs go, the jobs still waiting on them go to dead/
// as a worker's claim would send them ("dependency X failed"). Reads every waiting job.
void fail_dependents(const Spool& spool, const std::unordered_set<std::string>& dead) {
  if (dead.empty()) {
    return;
  }
  Transitions tx(spool);
  Counters counters(spool);
  for (const JobState s : {JobState::pending, JobState::held, JobState::failed}) {
    for (const StoredJob& sj : spool.list(s)) {
      for (const std::string& dep : sj.job.after()) {
        if (dead.count(dep) == 0) {
          continue;
        }
        // A worker may be claiming it right now: wait until it has decided (with the dead
        // job still there, a claim sends it to dead/ too), at most a few seconds.
        for (int attempt = 0;; ++attempt) {
          try {
            tx.fail_dependent(sj.job.id(), dep);
            counters.add(count_one(Counter::jobs_dead));
            break;
          } catch (const Error&) {
            const auto now_in = spool.locate(sj.job.id());
            if (!now_in || *now_in == JobState::processing || *now_in == JobState::completed ||
                *now_in == JobState::dead || attempt == 300) {
              break; // moved on (claimed, cancelled, sent to dead/ by a worker)
            }
            sys::sleep_for(10'000);
          }
        }
        break;
      }
    }
  }
}

} // namespace

std::size_t purge(const Spool& spool, JobState s, std::optional<double> older_than) {
  const Micros now = now_micros();
  std::vector<std::string> ids;
  spool.for_each_job(s, [&](std::string_view stem) {
    if (valid_id(stem)) {
      ids.emplace_back(stem);
    }
  });
  // Age is the time since updated_at; a file without one is as old as its mtime.
  const auto old_enough = [&](const LockedJob& l) {
    if (!older_than) {
      return true;
    }
    std::string why;
    const std::optional<Job> job = Job::try_parse(l.content, why);
    std::optional<Micros> updated = job ? job->time_field("updated_at") : std::nullopt;
    if (!updated) {
      const auto st = spool.stat_job(s, l.stem);
      updated = st ? sys::mtime_micros(*st) : now;
    }
    return now - *updated >= seconds_to_micros(*older_than);
  };
  std::unordered_set<std::string> going;
  if (s == JobState::dead) {
    for (const std::string& id : ids) {
      if (const auto locked = spool.lock_job(s, id); locked && old_enough(*locked)) {
        going.insert(id);
      }
    }
    fail_dependents(spool, going);
  }
  Transitions tx(spool);
  std::size_t n = 0;
  for (const std::string& id : ids) {
    if (s == JobState::dead && going.count(id) == 0) {
      continue; // busy at the first look: its dependents were not looked at
    }
    auto locked = spool.lock_job(s, id);
    if (!locked || !old_enough(*locked)) {
      continue;
    }
    tx.remove(*locked);
    ++n;
  }
  if (n > 0) {
    tx.sync(s);
  }
  return n;
}

void purge_job(const Spool& spool, const std::string& id) {
  if (const auto s = spool.locate(id); s == JobState::dead) {
    fail_dependents(spool, {id});
  }
  Transitions(spool).purge(id);
}

} // namespace queuectl::cmd
