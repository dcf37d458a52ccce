// registry: how workers and supervisors announce themselves in SPOOL/workers/.
//
//   workers/supervisor-<pid>.json  {"pid","since","count"}      locked by the supervisor
//   workers/worker-<pid>.json      {"pid","supervisor","since"} locked by the worker
//   workers/worker-<pid>.job       the id of the job the worker runs (blank when idle)
//   workers/cancel-<id>            `cancel` asks that running job <id> be ended (empty)
//
// A record is alive exactly while its flock(2) is held: the kernel drops the lock when
// the process dies, however it dies, so a PID is never trusted on its own. A record is
// locked before it gets its name (dot-temp, lock, rename), so nobody sees it unlocked.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/fd.hpp"
#include "queuectl/sys.hpp"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace queuectl {

class Spool;

enum class RecordKind { supervisor, worker };

struct WorkerInfo {
  RecordKind kind;
  pid_t pid = 0;
  pid_t supervisor = 0; // workers only
  std::string since;
  std::optional<std::string> job; // workers only
  std::string file;               // record file name in workers/
};

// A record held by this process; released (and removed) on destruction.
class Registration {
public:
  Registration(const Spool& spool, RecordKind kind, pid_t supervisor, int count);
  Registration(Registration&&) = default;
  Registration& operator=(Registration&&) = delete;
  ~Registration();

  // Records the job this worker runs (nullopt: idle). Not fsync'ed: it is advice for
  // `worker status`, rebuilt from scratch by every new worker.
  void set_job(const std::optional<std::string>& id);
  // Drops the lock without removing the file: for a forked child that must not hold it.
  void abandon() {
    m_lock = {};
    m_job.reset();
    m_dir = nullptr;
  }

private:
  const sys::Dir* m_dir = nullptr; // the spool's workers/
  std::string m_name;
  std::string m_job_name;
  sys::LockFile m_lock;
  Fd m_job;                                          // worker-<pid>.job, open for pwrite
  std::optional<std::optional<std::string>> m_shown; // what it says (unset: not written yet)
};

// Live records of the spool, supervisors and workers; stale ones are removed on the way.
std::vector<WorkerInfo> live_records(const Spool& spool);
// Number of live worker processes.
std::size_t live_worker_count(const Spool& spool);

// `cancel ID` of a running job: the request, workers/cancel-<id>, removed once the job
// has left processing/. Workers watch workers/ for it (so a member of the spool's group
// cancels a job that a worker of another user runs, with no signal), and a worker
// of this version also looks when it gets SIGUSR2, as older `cancel`s sent. The worker,
// and whoever recovers the job if its worker died, record the run as cancelled when it
// is there. A request left by a `cancel` killed on the way is removed by workers after
// a minute.
class CancelRequest {
public:
  CancelRequest(const Spool& spool, std::string id);
  CancelRequest(const CancelRequest&) = delete;
  CancelRequest& operator=(const CancelRequest&) = delete;
  ~CancelRequest();
  // Tells the watching workers again (its times set to now): for a worker that was still
  // starting the job when the request came.
  void renew() const;
  static bool is_request(std::string_view name, const std::string& id);

private:
  const sys::Dir& m_dir;
  std::string m_name;
};
// Whether running job `id` is asked to be cancelled: its request is there and was made or
// renewed within k_cancel_fresh.
constexpr Micros k_cancel_fresh = 5'000'000;
bool cancel_requested(const Spool& spool, const std::string& id);
// Removes requests over a minute old whose job is not running (their `cancel` was killed).
void remove_stale_cancel_requests(const Spool& spool, Micros now);

// Blocks until the process holding record `file` has exited (its lock is free).
void wait_for_exit(const Spool& spool, const std::string& file);

} // namespace queuectl
