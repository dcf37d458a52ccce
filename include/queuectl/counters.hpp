// counters: totals that survive restarts and purges, kept in SPOOL/stats.
//
// The file is text, one "name value" line per counter with fixed-width values, so an
// update is one locked pread/pwrite of the same size in place (one sector: it cannot be
// torn) and `cat SPOOL/stats` shows it. Any number of processes update it under flock.
#pragma once

#include "queuectl/fd.hpp"
#include "queuectl/job.hpp"
#include "queuectl/sys.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace queuectl {

class Spool;

enum class Counter : std::size_t {
  runs_completed, // runs that exited 0
  runs_failed,    // runs that failed: exit status, signal, timeout, worker died
  jobs_dead,      // jobs that entered the dead-letter queue (any reason)
  jobs_retried,   // jobs scheduled for another run: backoff, or dlq retry
  count
};

// Upper bounds (seconds) of the run-time histogram's buckets; +Inf is implied.
inline constexpr std::array<double, 9> k_duration_buckets = {0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300, 3600};

struct CounterSnapshot {
  std::array<std::uint64_t, static_cast<std::size_t>(Counter::count)> counters{};
  std::array<std::uint64_t, k_duration_buckets.size() + 1> buckets{}; // per bucket, not cumulative
  std::uint64_t duration_sum_us = 0;

  std::uint64_t operator[](Counter c) const { return counters[static_cast<std::size_t>(c)]; }
};

// What happened, to add to the counters in one update.
struct CounterEvent {
  std::optional<Counter> a;
  std::optional<Counter> b;
  std::optional<double> completed_seconds; // a completed run's duration (histogram)
};

inline CounterEvent count_one(Counter c) {
  return CounterEvent{c, std::nullopt, std::nullopt};
}

// The counters a run's outcome adds: a completed run (and its duration), or a failed one
// with a retry scheduled or the job dead.
CounterEvent outcome_event(JobState to, std::optional<double> completed_seconds);

// The counters file of a spool. A process that updates it often (a worker's committer)
// keeps one, and with it the file open; a command makes one for its single update.
class Counters {
public:
  explicit Counters(const Spool& spool) : m_spool(spool) {}

  // Adds an event under the file's exclusive lock. Errors are returned as false, never
  // thrown: counters are advisory and must not fail a job.
  bool add(const CounterEvent& e) { return add(&e, 1); }
  // Adds `n` events in one update (one lock, one read, one write).
  bool add(const CounterEvent* events, std::size_t n);

  // The counters as they are now (all zero before the first event).
  static CounterSnapshot read(const Spool& spool);

private:
  const Spool& m_spool;
  sys::LockFile m_file; // opened by the first add()
};

} // namespace queuectl
