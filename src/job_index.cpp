#include "queuectl/job_index.hpp"

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
  if (!m_known.insert(e.id).second) {
    return false;
  }
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
  m_known.erase(e.id);
  return e;
}

std::optional<Micros> JobIndex::next_due() const {
  if (m_timers.empty()) {
    return std::nullopt;
  }
  return m_timers.top().due;
}

IndexEntry index_entry(const std::string& id, JobState from, std::string_view content,
                       std::int64_t default_priority, Micros fallback_created) {
  IndexEntry e;
  e.id = id;
  e.from = from;
  e.priority = default_priority;
  e.created = fallback_created;
  Json j = Json::parse(content.begin(), content.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return e;
  }
  const Job job(std::move(j));
  if (const auto it = job.json().find("priority"); it != job.json().end() && it->is_number_integer()) {
    e.priority = it->get<std::int64_t>();
  }
  e.created = job.time_field("created_at").value_or(fallback_created);
  const auto due = from == JobState::failed ? job.time_field("next_run_at") : job.time_field("run_at");
  e.due = due.value_or(0);
  return e;
}

} // namespace queuectl
