#include "queuectl/commands.hpp"

#include "queuectl/spool.hpp"
#include "queuectl/stats.hpp"
#include "queuectl/transition.hpp"

namespace queuectl {

void cancel_job(const Spool& spool, const std::string& id) {
  Transitions(spool).cancel(id);
  record_stats(spool, StatsEvent{Counter::jobs_dead, std::nullopt, std::nullopt});
}

void retry_dead_job(const Spool& spool, const std::string& id) {
  Transitions(spool).retry(id);
  record_stats(spool, StatsEvent{Counter::jobs_retried, std::nullopt, std::nullopt});
}

} // namespace queuectl
