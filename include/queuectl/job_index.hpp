// job_index: a worker's in-memory view of the jobs it may claim, in the order of work.
//
// Built once from pending/ and failed/ at start (by the supervisor, once for all the
// workers it starts, which inherit it with fork), then kept current from inotify events,
// so that picking the next job is a heap pop (O(log n)), not a directory scan, however
// many jobs wait. The index is advice: the claim (flock + rename) decides, and an entry
// whose file has moved on is simply dropped when its claim fails.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/job.hpp"
#include "queuectl/spool.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <functional>
#include <new>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

namespace queuectl {

struct IndexEntry {
  std::string id;                    // the file's stem: a drop-in's may not be a valid id (it is quarantined)
  JobState from = JobState::pending; // pending or failed
  std::int64_t priority = 0;
  Micros created = 0;
  Micros due = 0; // 0: may run now
};

class JobIndex {
public:
  // Adds a job unless it is already indexed from the same state. False if it was. A job
  // may be indexed from pending/ and failed/ at once: an entry from pending/ that another
  // worker has since run and failed is stale, and must not hide the job's retry.
  bool add(IndexEntry e);
  // The next job to try: highest priority, then oldest created, then lowest id, among
  // those due at `now` (due timers are promoted first). Removes it from the index.
  std::optional<IndexEntry> pop_ready(Micros now);
  // When the earliest not-yet-due job becomes due.
  std::optional<Micros> next_due() const;
  bool contains(const std::string& id, JobState from) const {
    const auto it = m_known.find(id);
    return it != m_known.end() && (it->second & bit(from)) != 0;
  }
  std::size_t size() const { return m_size; }

private:
  struct ReadyOrder {
    bool operator()(const IndexEntry& a, const IndexEntry& b) const; // "a runs after b"
  };
  struct DueOrder {
    bool operator()(const IndexEntry& a, const IndexEntry& b) const { return a.due > b.due; }
  };
  std::priority_queue<IndexEntry, std::vector<IndexEntry>, ReadyOrder> m_ready;
  std::priority_queue<IndexEntry, std::vector<IndexEntry>, DueOrder> m_timers;
  static unsigned bit(JobState s) { return 1U << static_cast<unsigned>(s); }
  std::unordered_map<std::string, unsigned> m_known; // id -> the states it is indexed from
  std::size_t m_size = 0;
};

// Reads what the index needs from a job file's bytes. Unparseable content gives an entry
// that is due now (the claim will send it to dead/). `fallback_created` orders drop-ins
// without created_at (their file's modification time).
IndexEntry index_entry(const std::string& id, JobState from, std::string_view content, std::int64_t default_priority,
                       Micros fallback_created);

// Reads the entry of one job file of `from` (pending/ or failed/); nullopt when it is
// gone, or is a symlink, FIFO or directory (never opened through; left where it is).
std::optional<IndexEntry> read_index_entry(const Spool& spool, JobState from, const std::string& id,
                                           std::int64_t default_priority);

// Reads the entries of every job of `from` for which `known(id)` is false, on several
// threads.
std::vector<IndexEntry> read_waiting(const Spool& spool, JobState from, std::int64_t default_priority,
                                     const std::function<bool(const std::string& id)>& known);

// Adds every job of `from` that the index does not know yet.
void index_waiting(JobIndex& index, const Spool& spool, JobState from, std::int64_t default_priority);

// Allocates straight from mmap, so that freeing returns the memory at once, whatever the
// allocator's thresholds and fragmentation, and without writing to the pages.
template <class T> struct MappedAllocator {
  using value_type = T;
  MappedAllocator() = default;
  template <class U> MappedAllocator(const MappedAllocator<U>&) {}
  T* allocate(std::size_t n) {
    void* p = ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      throw std::bad_alloc();
    }
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) { ::munmap(p, n * sizeof(T)); }
  bool operator==(const MappedAllocator&) const { return true; }
  bool operator!=(const MappedAllocator&) const { return false; }
};

// The entries of a JobIndex in two flat, mapped buffers: what a supervisor reads once
// and hands to the workers it forks. Flat and mapped, because freeing it then touches no
// page: freeing a million separate entries in the supervisor, whose pages its workers
// share after fork, copied every page (1.1 s of CPU for 200,000 entries), and heap
// blocks freed in the middle stay resident.
class IndexSnapshot {
public:
  void add(const IndexEntry& e);
  void fill(JobIndex& index) const;
  std::size_t size() const { return m_rows.size(); }

private:
  struct Row {
    Micros created;
    Micros due;
    std::int64_t priority;
    std::uint64_t id_at; // into m_ids
    std::uint8_t id_len; // a file name is at most 255 bytes, its stem 250
    JobState from;
  };
  std::vector<Row, MappedAllocator<Row>> m_rows;
  std::vector<char, MappedAllocator<char>> m_ids;
};

} // namespace queuectl
