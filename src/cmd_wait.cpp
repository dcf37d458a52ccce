// wait: until jobs are completed or dead (SPEC section 7), woken by inotify, never polling.
#include "queuectl/commands.hpp"
#include "queuectl/error.hpp"
#include "queuectl/sys.hpp"
#include "queuectl/watch.hpp"

#include <fmt/format.h>

#include <sys/inotify.h>

#include <algorithm>
#include <unordered_map>

namespace queuectl::cmd {

namespace {

bool finished(std::optional<JobState> s) {
  return s == JobState::completed || s == JobState::dead;
}

// The status `wait` exits with once every job is finished.
int outcome(const Spool& spool, const std::vector<std::string>& ids, const std::vector<std::optional<JobState>>& at) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (at[i] != JobState::dead) {
      continue;
    }
    const auto sj = spool.try_load(ids[i]);
    if (!sj) {
      return 1;
    }
    const auto it = sj->job.json().find("exit_code");
    if (it != sj->job.json().end() && it->is_number_integer()) {
      const std::int64_t code = it->get<std::int64_t>();
      if (code >= 1 && code <= 255) {
        return static_cast<int>(code);
      }
    }
    return 1; // cancelled, invalid, a dependency failed, or an exit code that is no status
  }
  return 0;
}

} // namespace

int wait_jobs(const Spool& spool, const std::vector<std::string>& ids, std::optional<double> timeout,
              std::vector<std::string>* unfinished) {
  // The watches first: a job that finishes while we look is an event.
  const auto watch = Watch::open();
  watch->add(spool.path_of(JobState::completed, ""), IN_MOVED_TO);
  watch->add(spool.path_of(JobState::dead, ""), IN_MOVED_TO);
  std::vector<std::optional<JobState>> at(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    at[i] = spool.locate(ids[i]);
    if (!at[i]) {
      fail(fmt::format("no such job '{}'", ids[i]));
    }
  }
  std::unordered_map<std::string_view, std::vector<std::size_t>> where; // an id may be listed twice
  for (std::size_t i = 0; i < ids.size(); ++i) {
    where[ids[i]].push_back(i);
  }
  const Micros deadline = timeout ? later_by(now_micros(), *timeout) : k_latest_time;
  const auto all_finished = [&] { return std::all_of(at.begin(), at.end(), finished); };
  while (!all_finished()) {
    const Micros left = deadline - now_micros();
    if (left <= 0) {
      if (unfinished) {
        for (std::size_t i = 0; i < ids.size(); ++i) {
          if (!finished(at[i])) {
            unfinished->push_back(ids[i]);
          }
        }
      }
      return 124;
    }
    pollfd fd{watch->fd(), POLLIN, 0};
    sys::poll(&fd, 1, static_cast<int>(std::min<Micros>((left + 999) / 1000, 3'600'000)));
    bool look_all = false;
    watch->drain([&](int, std::uint32_t mask, std::string_view name) {
      if (mask & IN_Q_OVERFLOW) {
        look_all = true;
        return;
      }
      const auto id = id_of_file(name);
      const auto it = id ? where.find(*id) : where.end();
      if (it == where.end()) {
        return;
      }
      for (const std::size_t i : it->second) {
        if (!finished(at[i])) {
          // A job purged once finished counts as completed.
          at[i] = spool.locate(ids[i]).value_or(JobState::completed);
        }
      }
    });
    // A poll lists a large done/ seldom: look for each job by name at every wake instead.
    look_all = look_all || !watch->polling().empty();
    for (std::size_t i = 0; look_all && i < ids.size(); ++i) {
      at[i] = spool.locate(ids[i]).value_or(JobState::completed);
    }
  }
  return outcome(spool, ids, at);
}

} // namespace queuectl::cmd
