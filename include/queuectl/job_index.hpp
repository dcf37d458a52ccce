// job_index: a worker's bounded view of the jobs it may claim, in the order of work.
//
// The index keeps at most `capacity` jobs that may run now and as many timers (jobs due
// later): the first ones in order, Postfix's "active queue". Whatever does not fit is
// left on disk, and the index remembers where it cut: a job that arrives later and
// would run before the cut is kept, any other is left for the next scan. When the jobs
// kept have run out and some were cut, the worker scans the spool again (scan_waiting),
// so a million waiting jobs cost a worker a few megabytes, and its first job is chosen
// from all of them.
//
// The index is advice: the claim (flock + rename) decides, and an entry whose file has
// moved on is simply dropped when its claim fails.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/job.hpp"
#include "queuectl/spool.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

namespace queuectl {

struct IndexEntry {
  std::string id;                    // the file's stem: a drop-in's may not be a valid id (it is quarantined)
  JobState from = JobState::pending; // pending or failed
  std::int64_t priority = 0;
  Micros created = 0;
  Micros due = 0;     // 0: may run now
  std::string queue;  // empty for "default"
  bool waits = false; // it has `after`: whether it may start is known only from the spool
};

// "a runs before b": highest priority, then oldest created, then lowest id.
bool runs_before(const IndexEntry& a, const IndexEntry& b);

inline constexpr std::size_t k_index_capacity = 50'000;

class JobIndex {
public:
  explicit JobIndex(std::size_t capacity = k_index_capacity) : m_capacity(capacity < 1 ? 1 : capacity) {}

  // Whether add() would leave `e` out at once (it runs after the cut): cheaper than
  // add(), which takes its entry by value.
  bool left_out(const IndexEntry& e) const {
    return e.due <= 0 ? m_ready_cut && !runs_before(e, *m_ready_cut) : m_timers_cut && e.due >= *m_timers_cut;
  }
  // Offers a job. False when it is already kept from the same state, or left out (the
  // index is full of jobs that run before it). A job may be kept from pending/ and
  // failed/ at once: an entry from pending/ that another worker has since run and failed
  // is stale, and must not hide the job's retry.
  bool add(IndexEntry e);
  // The next job to try among those due at `now` (timers due by then are promoted
  // first) for which `can_start` holds (all when it is empty): the others stay, skipped
  // (a queue at its limit, a job whose dependencies have not completed). Removes it from
  // the index.
  std::optional<IndexEntry> pop_ready(Micros now, const std::function<bool(const IndexEntry&)>& can_start = {});
  // When the earliest timer becomes due, or the earliest left out (then a scan is due).
  std::optional<Micros> next_due() const;
  // Jobs were left out, and at `now` one of them may be the next to run: the ready jobs
  // kept have run out, or a timer left out is due.
  bool needs_scan(Micros now) const;
  // Adds what `other` keeps, and leaves out what either left out.
  void merge(JobIndex&& other);
  // Forgets everything, before a scan.
  void clear();
  // Removes the entries for which `pred` holds.
  void remove_if(const std::function<bool(const IndexEntry&)>& pred);

  // The index as text, and back (false, and the index cleared, when `text` is not a
  // whole saved index): how a supervisor hands one scan to the workers it starts.
  void save(std::string& out) const;
  bool load(std::string_view text);

  bool contains(const std::string& id, JobState from) const {
    const auto it = m_known.find(id);
    return it != m_known.end() && (it->second & bit(from)) != 0;
  }
  std::size_t size() const { return m_ready.size() + m_timers.size(); }
  std::size_t ready_size() const { return m_ready.size(); }
  std::size_t capacity() const { return m_capacity; }
  bool truncated() const { return m_ready_cut.has_value() || m_timers_cut.has_value(); }

private:
  struct RunsBefore {
    bool operator()(const IndexEntry& a, const IndexEntry& b) const;
  };
  struct DueBefore {
    bool operator()(const IndexEntry& a, const IndexEntry& b) const;
  };
  static unsigned bit(JobState s) { return 1U << static_cast<unsigned>(s); }
  void forget(const IndexEntry& e);
  bool keep_ready(IndexEntry e);

  std::size_t m_capacity;
  std::set<IndexEntry, RunsBefore> m_ready;
  std::set<IndexEntry, DueBefore> m_timers;
  std::optional<IndexEntry> m_ready_cut;             // the first left out of m_ready: all before it are kept
  std::optional<Micros> m_timers_cut;                // the earliest due left out of m_timers
  std::unordered_map<std::string, unsigned> m_known; // id -> the states it is kept from
};

// What the index needs from a parsed job: priority (else `default_priority`), created_at
// (else `fallback_created`) and due time.
IndexEntry index_entry_of(const Job& job, const std::string& id, JobState from, std::int64_t default_priority,
                          Micros fallback_created);

// Reads what the index needs from a job file's bytes. Unparseable content gives an entry
// that is due now (the claim will send it to dead/). `fallback_created` orders drop-ins
// without created_at (their file's modification time).
IndexEntry index_entry(const std::string& id, JobState from, std::string_view content, std::int64_t default_priority,
                       Micros fallback_created);

// Reads the entry of one job file of `from` (pending/ or failed/); nullopt when it is
// gone, or is a symlink, FIFO or directory (never opened through; left where it is).
std::optional<IndexEntry> read_index_entry(const Spool& spool, JobState from, const std::string& id,
                                           std::int64_t default_priority);

struct ScanStats {
  std::size_t pending = 0;  // files listed in pending/
  std::size_t from_log = 0; // of those, known from pending.index without reading the file
  std::size_t read = 0;     // job files read (pending/ ones missing from pending.index, and failed/)
  bool compacted = false;   // pending.index was rewritten
};

// Fills `index` (cleared first) with the waiting jobs of pending/ and failed/: the names
// listed in the directories, their order from pending.index where it has them (see
// pending_index.hpp), from the job file where it does not. Rewrites pending.index when
// it has grown well past what waits, or lacked jobs. Memory: 16 bytes per pending job
// during the scan, then the index's capacity. Only entries `accept` takes (when given; it
// is called from several threads) are kept: a worker's queues, those not paused.
// `progress`, when given, hears how many waiting jobs were looked at so far, every 4096
// (from several threads too).
ScanStats scan_waiting(const Spool& spool, std::int64_t default_priority, Micros now, JobIndex& index,
                       const std::function<bool(const IndexEntry&)>& accept = {},
                       const std::function<void(std::size_t)>& progress = {});

} // namespace queuectl
