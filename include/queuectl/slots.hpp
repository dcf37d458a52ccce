// slots: a queue's concurrency limit, held as locks that the kernel releases.
//
// A queue limited to N runs has N slot files, SPOOL/workers/slots/<queue>.<k> for k < N.
// A run of one of its jobs holds an exclusive flock(2) on one of them, taken without
// blocking before the claim, on a descriptor that its command inherits like the job's
// lock: the slot is free again only once the worker, the command and every child that
// kept the descriptor are gone. There is no counter, so no crash can leave one wrong,
// and every supervisor on the spool shares the same slots.
//
// A worker waiting for a slot learns that one is free from inotify: the last close of a
// descriptor, which is what releases its lock, is an IN_CLOSE event on the slot's file.
// A failed try must not cause such an event, or waiting workers would wake each other in
// turn forever: each worker keeps the descriptor of every slot it has tried and fails
// on ("probes"), and tries again on the same one.
#pragma once

#include "queuectl/fd.hpp"
#include "queuectl/sys.hpp"

#include <cstdint>
#include <map>
#include <string>

namespace queuectl {

class Spool;

class QueueSlots {
public:
  // Opens SPOOL/workers/slots/, creating it when missing.
  explicit QueueSlots(const Spool& spool);
  // For an inotify watch (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE).
  const std::string& path() const { return m_dir.path(); }
  // A free slot of `queue` among the first `limit`, locked: the descriptor the run must
  // keep (and its command inherit) for as long as it holds the slot. Empty when every
  // one is taken. Throws Error when a slot file cannot be opened.
  Fd try_take(const std::string& queue, std::int64_t limit);

private:
  sys::Dir m_dir;
  mode_t m_mode;
  std::map<std::string, Fd> m_probes; // by file name: tried, found taken, kept open
};

} // namespace queuectl
