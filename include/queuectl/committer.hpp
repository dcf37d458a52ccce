// committer: finishes runs off the worker's critical path, in groups that share syncs.
#pragma once

#include "queuectl/counters.hpp"
#include "queuectl/transition.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>

namespace queuectl {

class Spool;

// Where a worker reports what an operator should see (failures, recoveries, errors).
using LogSink = std::function<void(std::string_view line)>;

struct CommitGrouping {
  // What is pushed within this time of a group's first item joins the group...
  std::chrono::milliseconds window{20};
  // ... unless the group is this large already: then it is committed at once.
  std::size_t max = 32;
};

// Writing an outcome costs an fdatasync and moving the job an fsync of its new directory.
// A Committer pays them on its own thread while the worker runs the next job, and in
// groups: one fsync per directory for the whole group. Each sync costs the machine more
// than its own time (it slows every process start running beside it). A job stays locked
// (its Claimed held here) until its new state is durable; a commit that fails leaves it
// in processing/ for recovery, never lost.
class Committer {
public:
  struct Item {
    Outcome outcome;
    CounterEvent counts;
  };

  Committer(Spool& spool, const LogSink& log, CommitGrouping grouping = {});
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;
  ~Committer() { close(); }

  void push(Item item);
  // Commits what is queued now, without waiting for the rest of the window: a job waits
  // for one of them to be completed (its `after`).
  void hurry();
  // Commits what is queued (without waiting for a window), then stops the thread.
  void close();
  // How many groups have been committed so far.
  std::size_t groups() const;

private:
  void loop();
  void commit(std::deque<Item>& group);

  const LogSink& m_log;
  const CommitGrouping m_grouping;
  Counters m_counters;
  Transitions m_tx;
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Item> m_items;
  std::size_t m_groups = 0;
  bool m_closed = false;
  bool m_hurry = false;
  std::thread m_thread; // last: started once the rest is built
};

} // namespace queuectl
