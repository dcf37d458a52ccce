#include "queuectl/lock_waiters.hpp"

#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"

#include <algorithm>
#include <thread>

namespace queuectl {

void LockWaiters::wait_for(const Spool& spool, const std::string& id) {
  if (!m_waiting.insert(id).second) {
    return;
  }
  sys::LockFile file;
  try {
    file = sys::LockFile(spool.open_job(JobState::processing, id), spool.path_of(JobState::processing, job_file(id)));
  } catch (const Error&) {
    // not a regular file: never a job of ours to wait for
  }
  if (!file) {
    m_waiting.erase(id);
    return;
  }
  std::thread([box = m_box, id, file = std::move(file)]() mutable {
    Fd fd;
    try {
      file.lock();
      fd = file.release();
    } catch (const Error&) {
      // cannot wait: the worker's scans are the backstop (an empty fd says so)
    }
    const std::lock_guard<std::mutex> g(box->mutex);
    box->ready.emplace_back(id, std::move(fd));
    box->event.ring();
  }).detach();
}

std::vector<std::pair<std::string, Fd>> LockWaiters::take() {
  m_box->event.clear();
  std::vector<std::pair<std::string, Fd>> out;
  {
    const std::lock_guard<std::mutex> g(m_box->mutex);
    out.swap(m_box->ready);
  }
  for (const auto& [id, fd] : out) {
    m_waiting.erase(id);
  }
  std::erase_if(out, [](const auto& r) { return !r.second; });
  return out;
}

} // namespace queuectl
