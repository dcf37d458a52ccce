#include "queuectl/slots.hpp"

#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"

#include <fmt/format.h>

#include <fcntl.h>

namespace queuectl {

QueueSlots::QueueSlots(const Spool& spool) : m_mode(spool.file_mode()) {
  m_dir = spool.workers().try_subdir("slots");
  if (!m_dir) {
    const mode_t mode = sys::stat_of(spool.workers().fd(), spool.workers().path()).st_mode & 07777;
    spool.workers().make_subdir("slots", mode); // as workers/: 0700, or the package's shared mode
    m_dir = spool.workers().subdir("slots");
  }
}

Fd QueueSlots::try_take(const std::string& queue, std::int64_t limit) {
  for (std::int64_t k = 0; k < limit; ++k) {
    const std::string name = fmt::format("{}.{}", queue, k);
    Fd& probe = m_probes[name];
    if (!probe) {
      probe = m_dir.try_open(name, O_RDONLY | O_CREAT | O_CLOEXEC, m_mode);
      if (!probe) {
        fail(fmt::format("cannot open queue slot '{}'", m_dir.path_of(name)));
      }
    }
    if (sys::try_lock(probe.get(), true, m_dir.path_of(name))) {
      Fd taken = std::move(probe);
      m_probes.erase(name);
      return taken;
    }
  }
  return Fd();
}

} // namespace queuectl
