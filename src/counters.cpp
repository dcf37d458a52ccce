#include "queuectl/stats.hpp"

#include "queuectl/clock.hpp"
#include "queuectl/error.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace queuectl {

namespace {

constexpr const char* k_counter_names[] = {"runs_completed", "runs_failed", "jobs_dead", "jobs_retried"};

std::vector<std::string> line_names() {
  std::vector<std::string> names(std::begin(k_counter_names), std::end(k_counter_names));
  for (double b : k_duration_buckets) {
    names.push_back(fmt::format("duration_le_{}", b));
  }
  names.emplace_back("duration_le_inf");
  names.emplace_back("duration_sum_us");
  return names;
}

std::vector<std::uint64_t> parse(const std::string& text, std::size_t n) {
  std::vector<std::uint64_t> v(n, 0);
  std::size_t i = 0;
  for (std::size_t pos = 0; pos < text.size() && i < n; ++i) {
    const auto sp = text.find(' ', pos);
    const auto nl = text.find('\n', pos);
    if (sp == std::string::npos || nl == std::string::npos || sp > nl) {
      break;
    }
    v[i] = std::strtoull(text.c_str() + sp + 1, nullptr, 10);
    pos = nl + 1;
  }
  return v;
}

std::string render(const std::vector<std::string>& names, const std::vector<std::uint64_t>& v) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += fmt::format("{:<20} {:020}\n", names[i], v[i]);
  }
  return out;
}

StatsSnapshot snapshot_of(const std::vector<std::uint64_t>& v) {
  StatsSnapshot s;
  std::size_t i = 0;
  for (auto& c : s.counters) {
    c = v[i++];
  }
  for (auto& b : s.buckets) {
    b = v[i++];
  }
  s.duration_sum_us = v[i];
  return s;
}

} // namespace

namespace {

bool add_locked(int fd, const StatsEvent& e);

} // namespace

StatsEvent outcome_event(JobState to, std::optional<double> completed_seconds) {
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

bool record_stats(const Spool& spool, const StatsEvent& e) {
  Fd fd(::openat(spool.root_dir(), "stats", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, spool.file_mode()));
  if (!fd || ::flock(fd.get(), LOCK_EX) != 0) {
    return false;
  }
  return add_locked(fd.get(), e); // the lock goes with the descriptor
}

StatsWriter::~StatsWriter() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

bool StatsWriter::record(const StatsEvent& e) {
  if (m_fd < 0) {
    m_fd = ::openat(m_spool.root_dir(), "stats", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, m_spool.file_mode());
    if (m_fd < 0) {
      return false;
    }
  }
  if (::flock(m_fd, LOCK_EX) != 0) {
    return false;
  }
  const bool ok = add_locked(m_fd, e);
  ::flock(m_fd, LOCK_UN);
  return ok;
}

namespace {

bool add_locked(int fd, const StatsEvent& e) {
  static const std::vector<std::string> names = line_names();
  char buf[4096];
  const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n < 0) {
    return false;
  }
  std::vector<std::uint64_t> v = parse(std::string(buf, static_cast<std::size_t>(n)), names.size());
  for (const auto& c : {e.a, e.b}) {
    if (c) {
      ++v[static_cast<std::size_t>(*c)];
    }
  }
  if (e.completed_seconds) {
    std::size_t bucket = k_duration_buckets.size();
    for (std::size_t i = 0; i < k_duration_buckets.size(); ++i) {
      if (*e.completed_seconds <= k_duration_buckets[i]) {
        bucket = i;
        break;
      }
    }
    ++v[static_cast<std::size_t>(Counter::count) + bucket];
    v.back() += static_cast<std::uint64_t>(seconds_to_micros(*e.completed_seconds));
  }
  const std::string text = render(names, v);
  const bool ok = ::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size());
  return ok;
}

} // namespace

StatsSnapshot read_stats(const Spool& spool) {
  static const std::vector<std::string> names = line_names();
  const auto text = sys::read_file_at(spool.root_dir(), "stats", spool.path_of("stats", ""));
  return snapshot_of(parse(text.value_or(""), names.size()));
}

std::string prometheus_metrics(const Spool& spool) {
  const auto counts = spool.counts();
  const StatsSnapshot s = read_stats(spool);
  std::string out;
  out += "# HELP queuectl_jobs Jobs in each state.\n# TYPE queuectl_jobs gauge\n";
  for (JobState st : k_all_states) {
    out += fmt::format("queuectl_jobs{{state=\"{}\"}} {}\n", state_name(st), counts[static_cast<std::size_t>(st)]);
  }
  out += fmt::format("# HELP queuectl_workers Live worker processes.\n# TYPE queuectl_workers gauge\nqueuectl_workers {}\n",
                     live_worker_count(spool));
  // The oldest pending job by its file's modification time: one fstatat per entry.
  Micros oldest = 0;
  spool.for_each_job(JobState::pending, [&](std::string_view stem) {
    if (const auto st = spool.stat_job(JobState::pending, stem)) {
      const Micros t = sys::mtime_micros(*st);
      if (oldest == 0 || t < oldest) {
        oldest = t;
      }
    }
  });
  const double age = oldest == 0 ? 0.0 : static_cast<double>(now_micros() - oldest) / 1e6;
  out += fmt::format("# HELP queuectl_oldest_pending_age_seconds Age of the oldest pending job (0 when none).\n"
                     "# TYPE queuectl_oldest_pending_age_seconds gauge\nqueuectl_oldest_pending_age_seconds {:.3f}\n",
                     age < 0 ? 0.0 : age);
  const auto c = [&](Counter k) { return s.counters[static_cast<std::size_t>(k)]; };
  out += fmt::format("# HELP queuectl_runs_completed_total Runs that exited 0.\n# TYPE queuectl_runs_completed_total counter\n"
                     "queuectl_runs_completed_total {}\n", c(Counter::runs_completed));
  out += fmt::format("# HELP queuectl_runs_failed_total Runs that failed (exit status, signal, timeout, worker died).\n"
                     "# TYPE queuectl_runs_failed_total counter\nqueuectl_runs_failed_total {}\n", c(Counter::runs_failed));
  out += fmt::format("# HELP queuectl_jobs_dead_total Jobs that entered the dead-letter queue.\n"
                     "# TYPE queuectl_jobs_dead_total counter\nqueuectl_jobs_dead_total {}\n", c(Counter::jobs_dead));
  out += fmt::format("# HELP queuectl_jobs_retried_total Jobs scheduled for another run (backoff or dlq retry).\n"
                     "# TYPE queuectl_jobs_retried_total counter\nqueuectl_jobs_retried_total {}\n", c(Counter::jobs_retried));
  out += "# HELP queuectl_job_duration_seconds Run time of completed runs.\n# TYPE queuectl_job_duration_seconds histogram\n";
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < k_duration_buckets.size(); ++i) {
    cum += s.buckets[i];
    out += fmt::format("queuectl_job_duration_seconds_bucket{{le=\"{}\"}} {}\n", k_duration_buckets[i], cum);
  }
  cum += s.buckets.back();
  out += fmt::format("queuectl_job_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cum);
  out += fmt::format("queuectl_job_duration_seconds_sum {:.6f}\n", static_cast<double>(s.duration_sum_us) / 1e6);
  out += fmt::format("queuectl_job_duration_seconds_count {}\n", cum);
  return out;
}

} // namespace queuectl
