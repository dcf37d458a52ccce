// transition: the one owner of a job file's state changes: claim, the start record, a
// run's outcome, explicit moves (cancel, retry), quarantine and recovery.
//
// The invariants it keeps (SPEC section 1), and how:
// - A job is in exactly one state directory at every instant: a state change is one
//   renameat2(RENAME_NOREPLACE) of <id>.json (its <id>.log moves just before it), so a
//   move can neither duplicate nor overwrite a job.
// - Whoever changes a job holds an exclusive flock(2) on its file, taken without blocking,
//   after which the name is checked to still refer to the locked inode. A claimed job's
//   command inherits the lock: the kernel drops it only when the worker, the command and
//   every child that kept the descriptor are gone.
// - New content never edits a file: it is written to a locked file in tmp/, fdatasync'ed,
//   and exchanged with the job's name (renameat2 RENAME_EXCHANGE), so the name always
//   refers to a whole, locked file. The old inode becomes the next rewrite's file (a
//   "spare"), so a job's bookkeeping creates and frees no inode.
// - A file is final on arrival in failed/, done/ and dead/: its new content is put in
//   place while the job is still in pending/ or processing/, then the job is renamed.
//   These two are the only directories where a file may, for a moment, hold another
//   state's content; after a crash:
//     processing/ (unlocked: its worker and command are gone): content "pending" (the
//       claim's content: the run started, its start not yet written) or "processing" (the
//       start written) is a run the worker did not finish: it counts as a failed attempt,
//       "worker died". Content "completed", "failed" or "dead" is an outcome written but
//       not yet moved: the move is finished (no run is counted twice, no outcome lost).
//     pending/: a file queuectl wrote (it has created_at) whose content says failed,
//       completed or dead holds that state's final content (a move through pending/ that
//       was cut short): it is moved to that state's directory unchanged.
//   So claims take only content that says "pending": a failed job whose backoff is over
//   is first moved back to pending/ with its content rewritten ("requeued"), then claimed.
// - Explicit moves choose their order by that rule: from pending/ (or processing/) the
//   new content is put in place first, then the job moves; into pending/ the job moves
//   first, then its content changes; between two final states (failed -> dead) it passes
//   through pending/.
// - A bad drop-in's record is written (and synced) in dead/ before the original is moved
//   beside it as <name>.orig: the job is never in no directory.
// - Temporaries live in tmp/ only, named .queuectl.<pid>.<n>.<kind> (see Spool::temp_name),
//   so the state directories hold nothing but jobs, logs and .orig files.
#pragma once

#include "queuectl/config.hpp"
#include "queuectl/fd.hpp"
#include "queuectl/job.hpp"
#include "queuectl/spool.hpp"

#include <optional>
#include <string>
#include <vector>

namespace queuectl {

// How a run ended. `error` is empty for success (exit status 0).
struct RunResult {
  std::optional<int> exit_code; // 128+N for signal N; nullopt when it never ran
  std::string error;            // "exit status 3", "timeout", "worker died", ...
  bool cancelled = false;       // `cancel` ended it: dead/, no retry, "cancelled"
};

// min(base ^ attempts, max) seconds.
double backoff_seconds(std::int64_t attempts, double base, double max);

// Records a finished run in `job` (exit_code, last_error, next_run_at) and returns where
// it goes: completed; failed when attempts <= max_retries (a retry remains); else dead
// (a cancelled run: dead at once).
JobState record_run(Job& job, const RunResult& r, const Config& cfg, Micros now);

// A file in tmp/ holding new content for a job, written and locked, not yet in place.
struct TempFile {
  std::string name;
  Fd fd;
};

// A job in processing/, locked by this process, its run counted (see claim()).
class Claimed {
public:
  const std::string& id() const { return m_locked.stem; }
  // The content as the start record writes it: state processing, attempts counting this
  // run, the spool's defaults filled in for a drop-in.
  const Job& job() const { return m_job; }
  // Descriptors the command must inherit: the lock of whichever file holds the job's
  // name while it runs (the file as claimed, and its start record once written).
  std::vector<int> inherit_fds() const;
  // The run's log, open for appending: processing/<id>.log.
  int log_fd() const { return m_log.get(); }
  bool start_recorded() const { return m_recorded; }
  // The run holds a slot of its queue's concurrency limit (see slots.hpp): kept, and
  // inherited by the command, until the run's outcome is committed.
  void hold_slot(Fd slot) { m_slot = std::move(slot); }
  // The command has exited: the worker lets go of the slot (a child of the command that
  // kept the descriptor still holds it until it exits), so that the next job of the
  // queue need not wait for this outcome's commit.
  void release_slot() { m_slot.reset(); }

private:
  friend class Transitions;
  Fd m_slot;
  LockedJob m_locked;
  Job m_job;
  TempFile m_staged; // the start record, written while nothing waits, not yet in place
  Fd m_log;
  bool m_recorded = false;
};

// A run's outcome, decided and ready to be committed (by another thread if need be).
struct Outcome {
  Claimed claimed;
  Job job; // the final content
  JobState to;
};

struct ClaimResult {
  enum Status {
    claimed,           // `job` is set
    gone,              // claimed or moved by someone else meanwhile
    busy,              // locked by someone else now (a worker claiming it, or a command such as
                       // release or retry finishing its move): worth another look soon
    not_due,           // `due` is set
    quarantined,       // an invalid drop-in: moved to dead/ with why (`note`)
    resolved,          // a move cut short by a crash was finished (`note`)
    blocked,           // it comes after a job (`note`) that has not completed yet; left where it is
    dependency_failed, // it comes after a dead job (`note`): moved to dead/ without running
  } status = gone;
  std::optional<Claimed> job;
  Micros due = 0;
  std::string note;
};

struct Recovered {
  std::string id;
  JobState to;
};

// One thread's door to the transitions. It owns that thread's reusable files in tmp/:
// the spare that new content is written to, and an empty log kept ready for the next
// claim (creating a file allocates an inode, which is slow on some file systems: it is
// done between jobs rather than between a job's enqueue and its start).
class Transitions {
public:
  explicit Transitions(const Spool& spool) : m_spool(spool) {}
  Transitions(const Transitions&) = delete;
  Transitions& operator=(const Transitions&) = delete;
  ~Transitions(); // removes its files in tmp/

  // Makes the empty log ready (no-op when it is). Errors are ignored: a claim then
  // creates the log itself.
  void prepare_log();

  // Claims `<stem>.json` of `from` (pending/ or failed/) if it is due: lock, check (a
  // drop-in is validated and given the spool's defaults; an invalid one is quarantined),
  // requeue it if it waited in failed/, move it to processing/, stage its start record
  // and open its log. The caller starts the command with Claimed::inherit_fds(), calls
  // record_start() if the run lasts, and conclude() when it ends. A job whose `after`
  // lists a job that has not completed is not claimed (blocked); one that lists a dead
  // job is moved to dead/ (dependency_failed). Until the start record
  // is written the file in processing/ keeps its pending content: being there is what
  // records that the run started (readers count it, see Job::read_from). Throws Error for
  // I/O only.
  ClaimResult claim(JobState from, const std::string& stem, const Config& cfg, Micros now);

  // Puts the start record in place (fdatasync'ed, not the directory).
  void record_start(Claimed& c);

  // Decides the outcome's content and state (no I/O): completed, failed (retry at the
  // backoff) or dead.
  Outcome conclude(Claimed c, const RunResult& r, const Config& cfg, Micros now);

  // Writes the outcome's content in processing/ (fdatasync'ed), then moves the job to
  // its state's directory. The directory is not fsync'ed (see sync()); the caller keeps
  // `o` (and so the job's lock) until it is. Throws Error; the job then stays in
  // processing/ and is recovered once its lock is dropped.
  void commit(Outcome& o);
  void sync(JobState s) const;

  // Every job in processing/ whose lock is free (its worker and command are gone) is
  // recovered (see recover_locked). Returns those recovered; `held` gets the ids whose
  // lock is held (running, or an orphaned command still alive).
  std::vector<Recovered> recover(const std::string& reason, std::vector<std::string>* held = nullptr);
  // Recovers one job of processing/ whose lock this process holds: an outcome written
  // but not moved is moved; otherwise the run counts as a failed attempt for `reason`
  // and the retry rule applies (or, when `cancel` asked for it, the run is cancelled).
  // nullopt when the name no longer refers to `locked`.
  std::optional<Recovered> recover_locked(LockedJob locked, const std::string& reason);

  // Deletes a locked job (completed or dead): its .orig when it is a quarantine record,
  // its log, then its file (the job file last: a crash leaves a job without a log, never
  // a log without its job). The directory is not fsync'ed (see sync()).
  void remove(LockedJob& j);

  // Pending, held, failed -> dead, last_error "cancelled". Error(failure) otherwise.
  void cancel(const std::string& id);
  // Pending, failed -> held (next_run_at kept, for `show`). Error(failure) otherwise.
  void hold(const std::string& id);
  // Held -> pending, attempts kept, next_run_at removed. Error(failure) otherwise.
  void release(const std::string& id);
  // Dead (or, unless `dead_only`, completed) -> pending, attempts 0, next_run_at
  // removed. Error(failure) otherwise, and for a quarantine record.
  void retry(const std::string& id, bool dead_only);
  // Completed or dead -> gone, with its log and .orig (see remove()). Error(failure)
  // otherwise; NotFound for an unknown id.
  void purge(const std::string& id);
  // Pending, held or failed -> dead without running, "dependency `dep` failed", as a
  // worker's claim does: for a job that comes after a dead job about to be purged (a
  // purged job counts as completed, so it would run). Error(failure) if it moved on.
  void fail_dependent(const std::string& id, const std::string& dep);

private:
  // Fills the spare (or a new file) with `data`, not synced, and hands it over: until a
  // file is given back (give_back), this object has no spare.
  TempFile take_spare(std::string_view data);
  // Keeps `name` as the spare, `old_lock` held until its next use; removes it when there
  // is a spare already.
  void give_back(std::string name, Fd old_lock);
  // Puts `t` in place of the locked job's file, after an fdatasync; the job's old inode
  // (at t.name now) becomes the spare.
  void exchange(LockedJob& j, TempFile t, std::string content);
  // fill_spare + exchange: replaces the content of a locked job in place.
  void rewrite(LockedJob& j, const Job& job);
  Fd open_log(const std::string& stem);
  // Moves a locked job's log and file to `to`. Throws Error(failure) when `to` holds the
  // id already; the job then stays where it was.
  void rename(LockedJob& j, JobState to) const;
  std::string quarantine(LockedJob& j, const std::string& why, const Json& fields);
  // Finishes a move through pending/ that a crash cut short (see the header comment).
  ClaimResult resolve(LockedJob& j, JobState to);

  const Spool& m_spool;
  std::string m_spare;        // its name in tmp/; empty: none
  Fd m_spare_old;             // its previous lock, maybe shared with a command that lives on
  bool m_no_exchange = false; // the file system refused RENAME_EXCHANGE: plain renames
  std::string m_log_name;
  Fd m_log;
};

} // namespace queuectl
