// lifecycle: the rules that move a job through its states: claim, outcome of a run,
// backoff, and recovery of jobs whose worker died.
#pragma once

#include "queuectl/config.hpp"
#include "queuectl/job_index.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/stats.hpp"

#include <optional>
#include <string>
#include <vector>

namespace queuectl {

// How a run ended. `error` is empty for success (exit status 0).
struct RunResult {
  std::optional<int> exit_code; // 128+N for signal N; nullopt when it never ran
  std::string error;            // "exit status 3", "timeout", "worker died", ...
};

// min(base ^ attempts, max) seconds.
double backoff_seconds(std::int64_t attempts, double base, double max);

// The counters a run's outcome adds (see stats.hpp).
StatsEvent stats_event(JobState to, std::optional<double> completed_seconds);

// Records a finished run in `job` (exit_code, last_error, next_run_at) and returns where
// it goes: completed; failed when attempts <= max_retries (a retry remains); else dead.
JobState record_run(Job& job, const RunResult& r, const Config& cfg, Micros now);

// What claiming adds to a job: the id and created_at (the mtime of the file open as `fd`)
// a drop-in may lack, the spool's defaults, and the run it starts (attempts + 1).
void start_run(Job& job, const std::string& id, int fd, const JobDefaults& defaults, Micros now);

struct Claim {
  LockedJob locked;     // in processing/, locked, content as it was in pending/
  Job job;              // start_run applied: attempts already counts this run
  StagedRewrite staged; // `job` written and locked, to be committed if the run lasts
};

enum class ClaimOutcome { claimed, gone, not_due, quarantined };

// Tries to claim the indexed job: lock it, check it (a drop-in is validated and given
// its defaults; an invalid one goes to dead/ with why), move it to processing/ and stage
// its new content with the attempt counted. The caller starts the command, letting it
// inherit both locks (`locked.lock` and `staged.fd`, so that whichever file holds the
// name, the running command holds its lock), and commits the staged rewrite once the run
// has lasted a while; a run that ends sooner goes straight to its outcome's rewrite and
// the staged one is discarded (Spool::discard_rewrite). Until then the file in
// processing/ still has its pending/ content: being in processing/ is what records that
// a run started, and readers (Job::read_from) and recovery count that run. This saves a
// short job a durable write (an fdatasync) on the path every job takes.
// `not_due` sets `*due` (the index was stale). Throws Error only for I/O. `spares`
// (optional): the staged content goes through a spare file.
ClaimOutcome claim_job(Spool& spool, const Config& cfg, const IndexEntry& e, Micros now,
                       std::optional<Claim>& out, Micros* due, Spares* spares = nullptr);

struct Recovered {
  std::string id;
  JobState to;
};

// Recovers every processing/ job whose lock is free (its worker and command are gone):
// the lost run counts as a failed attempt ("worker died") and the retry rule applies.
// A stale copy of a job that also exists in another state is removed. Reads only
// processing/ (a handful of entries), so it is cheap enough to run every few seconds.
// Safe to run from any number of processes.
std::vector<Recovered> recover_abandoned(Spool& spool);

// Removes dot-temporaries older than ten minutes, unlocked, that crashed writers left in
// the state directories. Reads every state directory: run it at start, not in a loop.
void remove_stale_temps(const Spool& spool);

} // namespace queuectl
