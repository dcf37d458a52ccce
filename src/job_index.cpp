#include "queuectl/job_index.hpp"

#include "queuectl/error.hpp"
#include "queuectl/parallel.hpp"
#include "queuectl/sys.hpp"

#include <sys/stat.h>

#include <algorithm>

namespace queuectl {

bool JobIndex::ReadyOrder::operator()(const IndexEntry& a, const IndexEntry& b) const {
  if (a.priority != b.priority) {
    return a.priority < b.priority;
  }
  if (a.created != b.created) {
    return a.created > b.created;
  }
  return a.id > b.id;
}

bool JobIndex::add(IndexEntry e) {
  unsigned& from = m_known[e.id];
  if ((from & bit(e.from)) != 0) {
    return false;
  }
  from |= bit(e.from);
  ++m_size;
  if (e.due > 0) {
    m_timers.push(std::move(e));
  } else {
    m_ready.push(std::move(e));
  }
  return true;
}

std::optional<IndexEntry> JobIndex::pop_ready(Micros now) {
  while (!m_timers.empty() && m_timers.top().due <= now) {
    m_ready.push(m_timers.top());
    m_timers.pop();
  }
  if (m_ready.empty()) {
    return std::nullopt;
  }
  IndexEntry e = m_ready.top();
  m_ready.pop();
  if (const auto it = m_known.find(e.id); it != m_known.end() && (it->second &= ~bit(e.from)) == 0) {
    m_known.erase(it);
  }
  --m_size;
  return e;
}

std::optional<Micros> JobIndex::next_due() const {
  if (m_timers.empty()) {
    return std::nullopt;
  }
  return m_timers.top().due;
}

IndexEntry index_entry(const std::string& id, JobState from, std::string_view content, std::int64_t default_priority,
                       Micros fallback_created) {
  IndexEntry e;
  e.id = id;
  e.from = from;
  e.priority = default_priority;
  e.created = fallback_created;
  std::string why;
  const std::optional<Job> job = Job::try_parse(content, why);
  if (!job) {
    return e;
  }
  if (const auto it = job->json().find("priority"); it != job->json().end() && it->is_number_integer()) {
    e.priority = it->get<std::int64_t>();
  }
  e.created = job->time_field("created_at").value_or(fallback_created);
  const auto st = job->state();
  if (from == JobState::pending && job->written_by_queuectl() && st && *st != JobState::pending) {
    return e; // a move cut short: the claim finishes it (see transition.hpp), now
  }
  e.due = job->due_at().value_or(0);
  return e;
}

std::optional<IndexEntry> read_index_entry(const Spool& spool, JobState from, const std::string& id,
                                           std::int64_t default_priority) {
  struct stat st {};
  std::string content;
  try {
    const Fd fd = spool.open_job(from, id, &st);
    if (!fd) {
      return std::nullopt; // gone already
    }
    if (static_cast<std::size_t>(st.st_size) <= k_max_job_file) { // else due now: the claim quarantines it
      content = sys::read_regular(fd.get(), static_cast<std::size_t>(st.st_size), spool.path_of(from, job_file(id)));
    }
  } catch (const Error&) {
    return std::nullopt; // symlinks, FIFOs, directories: never opened through, left where they are
  }
  return index_entry(id, from, content, default_priority, sys::mtime_micros(st));
}

std::vector<IndexEntry> read_waiting(const Spool& spool, JobState from, std::int64_t default_priority,
                                     const std::function<bool(const std::string& id)>& known) {
  std::vector<std::string> todo; // stems
  spool.for_each_job(from, [&](std::string_view stem) {
    std::string id(stem);
    if (!known(id)) {
      todo.push_back(std::move(id));
    }
  });
  // A worker indexes every waiting job before its first claim (a million is a normal
  // day), so that the first job claimed is the first in order. The reads are spread over
  // threads, which also keeps several disk reads in flight when the files are not cached
  // (after a reboot, when systemd starts the workers).
  std::vector<std::optional<IndexEntry>> read(todo.size());
  for_chunks(
      todo.size(),
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
          read[i] = read_index_entry(spool, from, todo[i], default_priority);
        }
      },
      Work::io, 256);
  std::vector<IndexEntry> entries;
  entries.reserve(read.size());
  for (std::optional<IndexEntry>& e : read) {
    if (e) {
      entries.push_back(std::move(*e));
    }
  }
  return entries;
}

void index_waiting(JobIndex& index, const Spool& spool, JobState from, std::int64_t default_priority) {
  for (IndexEntry& e :
       read_waiting(spool, from, default_priority, [&](const std::string& id) { return index.contains(id, from); })) {
    index.add(std::move(e));
  }
}

void IndexSnapshot::add(const IndexEntry& e) {
  if (m_rows.size() == m_rows.capacity()) {
    m_rows.reserve(std::max<std::size_t>(4096, m_rows.capacity() * 2));
  }
  if (m_ids.size() + e.id.size() > m_ids.capacity()) {
    m_ids.reserve(std::max<std::size_t>(1 << 16, (m_ids.size() + e.id.size()) * 2));
  }
  m_rows.push_back(Row{e.created, e.due, e.priority, m_ids.size(), static_cast<std::uint8_t>(e.id.size()), e.from});
  m_ids.insert(m_ids.end(), e.id.begin(), e.id.end());
}

void IndexSnapshot::fill(JobIndex& index) const {
  for (const Row& r : m_rows) {
    index.add(IndexEntry{std::string(m_ids.data() + r.id_at, r.id_len), r.from, r.priority, r.created, r.due});
  }
}

} // namespace queuectl
