// catalog: the order of the jobs in each state, kept between calls by a long-running
// reader (the dashboard's server), so that a page of a million-job queue costs one
// directory listing and the files of that page, not a read of every job on every
// refresh.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/spool.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace queuectl {

class Catalog {
public:
  explicit Catalog(const Spool& spool) : m_spool(spool) {}

  // The jobs [offset, offset + limit) of one state, or of all, in the order of
  // Spool::list_all (oldest created_at first, then id), or the reverse when `newest`.
  // Reads the files of jobs it has not seen before, and those of the page. Not
  // thread-safe.
  std::vector<StoredJob> page(std::optional<JobState> state, std::size_t offset, std::size_t limit,
                              bool newest = false);

  // Jobs remembered in a state (for tests).
  std::size_t known(JobState s) const { return m_known[static_cast<std::size_t>(s)].size(); }

private:
  struct Entry {
    Micros created;
    std::uint64_t seen; // the listing that last found it
  };
  void refresh(JobState s);

  const Spool& m_spool;
  std::array<std::unordered_map<std::string, Entry>, k_state_count> m_known; // by id, per state
  std::uint64_t m_listing = 0;
};

} // namespace queuectl
