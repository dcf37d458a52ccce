// worker start, stop and status: the supervisor and its workers, as the faces see them.
#include "queuectl/commands.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/supervisor.hpp"

namespace queuectl::cmd {

Json worker_status(const Spool& spool) {
  Json arr = Json::array();
  for (const WorkerInfo& w : live_records(spool)) {
    if (w.kind == RecordKind::worker) {
      arr.push_back({{"pid", w.pid},
                     {"supervisor", w.supervisor},
                     {"since", w.since},
                     {"job", w.job ? Json(*w.job) : Json(nullptr)}});
    }
  }
  return arr;
}

int start_workers(const Spool& spool, int count, const std::vector<std::string>& queues) {
  return run_supervisor(spool.root(), count, -1, queues);
}

std::vector<pid_t> start_workers_detached(const Spool& spool, int count, const std::vector<std::string>& queues,
                                          const std::function<void(std::size_t)>& progress) {
  return start_detached(spool.root(), count, queues, progress);
}

std::size_t stop_workers(const Spool& spool, bool now) {
  return stop_all(spool, now);
}

} // namespace queuectl::cmd
