// job_index: a worker's in-memory view of the jobs it may claim, in the order of work.
//
// Built once from pending/ and failed/ at start, then kept current from inotify events,
// so that picking the next job is a heap pop (O(log n)), not a directory scan, however
// many jobs wait. The index is advice: the claim (flock + rename) decides, and an entry
// whose file has moved on is simply dropped when its claim fails.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/job.hpp"

#include <cstdint>
#include <optional>
#include <queue>
#include <string>
#include <unordered_set>
#include <vector>

namespace queuectl {

struct IndexEntry {
  std::string id;
  JobState from = JobState::pending; // pending or failed
  std::int64_t priority = 0;
  Micros created = 0;
  Micros due = 0; // 0: may run now
};

class JobIndex {
public:
  // Adds a job unless it is already indexed. False if it was.
  bool add(IndexEntry e);
  // The next job to try: highest priority, then oldest created, then lowest id, among
  // those due at `now` (due timers are promoted first). Removes it from the index.
  std::optional<IndexEntry> pop_ready(Micros now);
  // When the earliest not-yet-due job becomes due.
  std::optional<Micros> next_due() const;
  bool contains(const std::string& id) const { return m_known.count(id) > 0; }
  std::size_t size() const { return m_known.size(); }

private:
  struct ReadyOrder {
    bool operator()(const IndexEntry& a, const IndexEntry& b) const; // "a runs after b"
  };
  struct DueOrder {
    bool operator()(const IndexEntry& a, const IndexEntry& b) const { return a.due > b.due; }
  };
  std::priority_queue<IndexEntry, std::vector<IndexEntry>, ReadyOrder> m_ready;
  std::priority_queue<IndexEntry, std::vector<IndexEntry>, DueOrder> m_timers;
  std::unordered_set<std::string> m_known;
};

// Reads what the index needs from a job file's bytes. Unparseable content gives an entry
// that is due now (the claim will send it to dead/). `fallback_created` orders drop-ins
// without created_at (their file's modification time).
IndexEntry index_entry(const std::string& id, JobState from, std::string_view content,
                       std::int64_t default_priority, Micros fallback_created);

} // namespace queuectl
