// lock_waiters: learning the moment an orphaned command lets go of its job's lock.
#pragma once

#include "queuectl/fd.hpp"
#include "queuectl/sys.hpp"

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace queuectl {

class Spool;

// Threads that wait for the lock of a job whose worker is gone while its command runs on
// (an orphan): the kernel hands the lock over the moment the last process holding it
// exits, and the worker recovers the job at once instead of at its next scan. Each
// waiter blocks in flock(2) on a descriptor of its own; what it gets is handed to the
// worker's event loop through an eventfd. The threads are detached: a worker that stops
// leaves the waiting to the next one (its process exit ends them).
class LockWaiters {
public:
  LockWaiters() : m_box(std::make_shared<Box>()) {}
  // Readable when a lock has been acquired (see take()).
  int fd() const { return m_box->event.fd(); }

  // Starts waiting for processing/<id>.json unless a waiter does already.
  void wait_for(const Spool& spool, const std::string& id);
  // The locks acquired since the last call: (id, the locked descriptor).
  std::vector<std::pair<std::string, Fd>> take();

private:
  struct Box {
    std::mutex mutex;
    std::vector<std::pair<std::string, Fd>> ready;
    sys::EventFd event;
  };
  std::shared_ptr<Box> m_box;
  std::set<std::string> m_waiting;
};

} // namespace queuectl
