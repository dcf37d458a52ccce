#include "queuectl/metrics.hpp"

#include "queuectl/commands.hpp"
#include "queuectl/counters.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

namespace queuectl {

namespace {

struct Family {
  const char* name;
  const char* type;
  const char* help;
};

// The counters, each one family of one sample.
struct CounterRow {
  Family family;
  Counter counter;
};

constexpr CounterRow k_counters[] = {
    {{"queuectl_runs_completed_total", "counter", "Runs that exited 0."}, Counter::runs_completed},
    {{"queuectl_runs_failed_total", "counter", "Runs that failed (exit status, signal, timeout, worker died)."},
     Counter::runs_failed},
    {{"queuectl_jobs_dead_total", "counter", "Jobs that entered the dead-letter queue."}, Counter::jobs_dead},
    {{"queuectl_jobs_retried_total", "counter", "Jobs scheduled for another run (backoff or dlq retry)."},
     Counter::jobs_retried},
};

constexpr Family k_jobs{"queuectl_jobs", "gauge", "Jobs in each state."};
constexpr Family k_queue_jobs{"queuectl_queue_jobs", "gauge", "Jobs in each state, per queue."};
constexpr Family k_workers{"queuectl_workers", "gauge", "Live worker processes."};
constexpr Family k_oldest{"queuectl_oldest_pending_age_seconds", "gauge",
                          "Age of the oldest pending job (0 when none)."};
constexpr Family k_duration{"queuectl_job_duration_seconds", "histogram", "Run time of completed runs."};

void header(std::string& out, const Family& f) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
}

// The oldest pending job by its file's modification time: one fstatat per entry.
double oldest_pending_age(const Spool& spool) {
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
  return age < 0 ? 0.0 : age;
}

} // namespace

std::string prometheus_text(const Spool& spool) {
  const auto counts = spool.counts();
  const CounterSnapshot c = Counters::read(spool);
  std::string out;
  header(out, k_jobs);
  for (JobState s : k_all_states) {
    out += fmt::format("{}{{state=\"{}\"}} {}\n", k_jobs.name, state_name(s), counts[static_cast<std::size_t>(s)]);
  }
  // Every job file says its queue: this reads each one (see queuectl-metrics(1)).
  header(out, k_queue_jobs);
  for (const Json& q : cmd::queue_list(spool)) {
    for (JobState s : k_all_states) {
      out += fmt::format("{}{{queue=\"{}\",state=\"{}\"}} {}\n", k_queue_jobs.name, q["queue"].get<std::string>(),
                         state_name(s), q[std::string(state_name(s))].get<std::size_t>());
    }
  }
  header(out, k_workers);
  out += fmt::format("{} {}\n", k_workers.name, live_worker_count(spool));
  header(out, k_oldest);
  out += fmt::format("{} {:.3f}\n", k_oldest.name, oldest_pending_age(spool));
  for (const CounterRow& row : k_counters) {
    header(out, row.family);
    out += fmt::format("{} {}\n", row.family.name, c[row.counter]);
  }
  header(out, k_duration);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < k_duration_buckets.size(); ++i) {
    cumulative += c.buckets[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", k_duration.name, k_duration_buckets[i], cumulative);
  }
  cumulative += c.buckets.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", k_duration.name, cumulative);
  out += fmt::format("{}_sum {:.6f}\n", k_duration.name, static_cast<double>(c.duration_sum_us) / 1e6);
  out += fmt::format("{}_count {}\n", k_duration.name, cumulative);
  return out;
}

} // namespace queuectl
