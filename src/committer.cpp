#include "queuectl/committer.hpp"

#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"

#include <fmt/format.h>

#include <set>
#include <vector>

namespace queuectl {

Committer::Committer(Spool& spool, const LogSink& log, CommitGrouping grouping)
    : m_log(log), m_grouping(grouping), m_counters(spool), m_tx(spool), m_thread([this] { loop(); }) {}

void Committer::push(Item item) {
  {
    const std::lock_guard<std::mutex> g(m_mutex);
    m_items.push_back(std::move(item));
  }
  m_cv.notify_one();
}

void Committer::hurry() {
  {
    const std::lock_guard<std::mutex> g(m_mutex);
    if (m_items.empty()) {
      return;
    }
    m_hurry = true;
  }
  m_cv.notify_one();
}

void Committer::close() {
  {
    const std::lock_guard<std::mutex> g(m_mutex);
    if (m_closed) {
      return;
    }
    m_closed = true;
  }
  m_cv.notify_one();
  m_thread.join();
}

std::size_t Committer::groups() const {
  const std::lock_guard<std::mutex> g(m_mutex);
  return m_groups;
}

void Committer::loop() {
  for (;;) {
    std::deque<Item> group;
    {
      std::unique_lock<std::mutex> g(m_mutex);
      m_cv.wait(g, [this] { return m_closed || !m_items.empty(); });
      if (m_items.empty()) {
        return;
      }
      m_cv.wait_for(g, m_grouping.window, [this] { return m_closed || m_hurry || m_items.size() >= m_grouping.max; });
      group.swap(m_items);
      m_hurry = false;
    }
    commit(group);
    const std::lock_guard<std::mutex> g(m_mutex);
    ++m_groups;
  }
}

void Committer::commit(std::deque<Item>& group) {
  std::set<JobState> dirs;
  std::vector<CounterEvent> counts;
  for (Item& it : group) {
    try {
      m_tx.commit(it.outcome);
      dirs.insert(it.outcome.to);
      counts.push_back(it.counts);
    } catch (const Error& e) {
      // The job stays in processing/; once its lock is dropped below, recovery finishes
      // the move or counts the run as failed, rather than losing it.
      m_log(fmt::format("cannot record the outcome of job {}: {}", it.outcome.claimed.id(), e.what()));
    }
  }
  for (JobState s : dirs) {
    try {
      m_tx.sync(s);
    } catch (const Error& e) {
      m_log(e.what());
    }
  }
  m_counters.add(counts.data(), counts.size()); // once for the group
  // The locks are released when `group` goes, after the new states are durable.
}

} // namespace queuectl
