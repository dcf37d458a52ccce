#include "queuectl/catalog.hpp"

#include "queuectl/parallel.hpp"

#include <algorithm>

namespace queuectl {

void Catalog::refresh(JobState s) {
  auto& known = m_known[static_cast<std::size_t>(s)];
  const std::uint64_t listing = ++m_listing;
  std::vector<std::string> fresh; // ids not seen before
  m_spool.for_each_job(s, [&](std::string_view stem) {
    if (const auto it = known.find(std::string(stem)); it != known.end()) {
      it->second.seen = listing;
    } else {
      fresh.emplace_back(stem);
    }
  });
  std::erase_if(known, [&](const auto& kv) { return kv.second.seen != listing; });
  // A job's created_at does not change, so only new names are read (on several threads:
  // the first listing of a large queue reads every job once).
  std::vector<std::optional<Micros>> created(fresh.size());
  for_chunks(
      fresh.size(),
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
          if (const auto job = m_spool.read_listed(s, job_file(fresh[i]))) {
            created[i] = job->time_field("created_at").value_or(0);
          }
        }
      },
      Work::io, 256);
  for (std::size_t i = 0; i < fresh.size(); ++i) {
    if (created[i]) { // unreadable files are read again next time, as list would
      known.emplace(std::move(fresh[i]), Entry{*created[i], listing});
    }
  }
}

std::vector<StoredJob> Catalog::page(std::optional<JobState> state, std::size_t offset, std::size_t limit,
                                     bool newest) {
  struct Row {
    Micros created;
    const std::string* id;
    JobState s;
    bool operator<(const Row& o) const { return created != o.created ? created < o.created : *id < *o.id; }
  };
  const auto before = [newest](const Row& a, const Row& b) { return newest ? b < a : a < b; };
  std::vector<Row> rows;
  for (JobState s : k_all_states) {
    if (state && s != *state) {
      continue;
    }
    refresh(s);
    for (const auto& [id, e] : m_known[static_cast<std::size_t>(s)]) {
      rows.push_back(Row{e.created, &id, s});
    }
  }
  const std::size_t end = limit > rows.size() || offset > rows.size() - limit ? rows.size() : offset + limit;
  if (offset >= end) {
    return {};
  }
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(end), rows.end(), before);
  std::vector<StoredJob> jobs;
  jobs.reserve(end - offset);
  for (std::size_t i = offset; i < end; ++i) {
    // Moved on since the listing: no longer in this state; its new one is listed next time.
    if (auto job = m_spool.read_listed(rows[i].s, job_file(*rows[i].id))) {
      jobs.push_back(StoredJob{rows[i].s, std::move(*job)});
    }
  }
  return jobs;
}

} // namespace queuectl
