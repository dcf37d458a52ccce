// spool: the directory tree and every state transition of a job file.
//
//   SPOOL/tmp/         writers create job files here first
//   SPOOL/pending/     <id>.json  ready, or waiting for run_at
//   SPOOL/processing/  <id>.json  claimed; <id>.log beside it
//   SPOOL/failed/      <id>.json  waiting for next_run_at
//   SPOOL/done/        <id>.json  completed
//   SPOOL/dead/        <id>.json  out of retries, cancelled or invalid (<name>.orig kept)
//   SPOOL/workers/     worker and supervisor records (see registry.hpp)
//   SPOOL/config.json
//
// Protocol (all directories are on one file system):
// - A job's state is the directory its file is in; the `state` field mirrors it, except
//   in processing/ during a run's first moments: the claim's rename records the run's
//   start before the file's content does (see Job::read_from and claim_job).
// - A state change is one renameat2(RENAME_NOREPLACE) of <id>.json (its <id>.log moves
//   just before it), so a job is in exactly one directory at every instant and is never
//   overwritten.
// - Whoever moves a job out of a directory first holds an exclusive flock(2) on the job
//   file and has checked that the name still refers to the locked inode. Content changes
//   are a locked dot-temp renamed over the name, so the name stays locked throughout.
// - A job in processing/ is locked for as long as its worker or its command lives (the
//   command inherits the descriptor). A processing/ job whose lock is free was abandoned.
// - Files starting with '.' are temporaries and never jobs.
// - A long-running worker keeps one spare temporary per directory (see Spares) and
//   rewrites a job by filling the spare and exchanging it with the job's name
//   (renameat2 RENAME_EXCHANGE): the name always refers to a whole file, and no inode is
//   created or freed per rewrite.
#pragma once

#include "queuectl/config.hpp"
#include "queuectl/fd.hpp"
#include "queuectl/job.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace queuectl {

struct StoredJob {
  JobState state;
  Job job;
};

// A job locked by this process (see the protocol above).
struct LockedJob {
  std::string id;
  JobState state;
  Fd lock;
  std::string content; // the file's bytes when it was locked
};

class Spares;

// A new content for a job, written and locked but not yet in place (see stage_rewrite).
struct StagedRewrite {
  Fd fd;
  JobState state = JobState::pending; // the directory of tmp
  std::string tmp;
  std::string content;
  Spares* spares = nullptr; // tmp is that Spares' file: exchanged with the job's name
};

// Reusable temporaries for a process that rewrites many jobs (a worker): one locked dot
// file per state directory. A rewrite fills the spare, fdatasyncs it and exchanges it with
// the job's name; the job's old inode then becomes the spare. Creating and freeing an inode
// per rewrite is what a job's bookkeeping cost most on ext4 (without a journal, ext4 scans
// past every inode freed in the last minutes on each creation). Before reuse a spare is
// reopened and relocked, since a job's command may still hold the old descriptor; one
// that cannot be relocked is dropped and a new one created. Left behind by a crash, the
// files are removed by remove_stale_temps(). One per thread; the destructor removes them.
class Spares {
public:
  explicit Spares(std::string tag) : m_tag(std::move(tag)) {}
  Spares(const Spares&) = delete;
  Spares& operator=(const Spares&) = delete;
  ~Spares();

private:
  friend class Spool;
  struct Slot {
    int dir = -1;
    std::string name; // empty: no spare yet
    Fd fd;            // the spare's old descriptor, maybe shared with a job's command
  };
  std::string m_tag;
  std::array<Slot, 5> m_slots;
  bool m_unsupported = false; // the file system refused RENAME_EXCHANGE
  unsigned m_serial = 0;
};

class Spool {
public:
  // --spool if given, else $QUEUECTL_SPOOL, else /var/spool/queuectl for root, else
  // ${XDG_STATE_HOME:-$HOME/.local/state}/queuectl.
  static std::filesystem::path resolve(const std::string& flag);

  // Opens the spool at `root`, creating it and any missing subdirectory (mode 0700 for a
  // new spool; a subdirectory takes the permission bits of the spool root). Throws Error.
  static Spool open(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return m_root; }
  int dir(JobState s) const { return m_dirs[static_cast<std::size_t>(s)].get(); }
  int tmp_dir() const { return m_tmp.get(); }
  int workers_dir() const { return m_workers.get(); }
  int root_dir() const { return m_root_fd.get(); }
  // The full path of `name` in a state directory, for messages.
  std::string path_of(JobState s, std::string_view name) const;
  std::string path_of(std::string_view subdir, std::string_view name) const;
  // Permission bits for files created in this spool: 0660 when the spool is shared with
  // a group (the packaged /var/spool/queuectl), else 0600.
  mode_t file_mode() const { return m_file_mode; }

  Config load_config() const;
  // Durably replaces config.json.
  void save_config(const Config& c) const;

  // Which state holds `id`: one fstatat per state directory, no scan.
  std::optional<JobState> find(const std::string& id) const;
  // As find(), checked twice in opposite orders so that a job moving between two
  // directories while it is looked for is still found.
  bool id_taken(const std::string& id) const;
  // Loads and returns a job (its state field set from its directory). Throws
  // Error(usage) for a malformed id, Error(failure) when no state holds it.
  StoredJob load(const std::string& id) const;
  std::optional<StoredJob> try_load(const std::string& id) const;
  // A job file of state `s` as listings show it; nullopt when it is gone, is not a
  // regular file or cannot be read, or is not a JSON object (listings skip those).
  std::optional<Job> read_listed(JobState s, const std::string& file) const;

  // Durably enqueues jobs already filled and validated (see enqueue.hpp for the checks
  // that come first), paying for durability once per batch: the data of all files, then
  // all renames (RENAME_NOREPLACE), then one fsync of pending/. Throws Error(failure) on
  // an id already in pending/ or an I/O error, saying how many were enqueued before it.
  std::vector<std::string> enqueue_batch(std::vector<Job>& jobs);

  // enqueue_batch in steps, for a caller that writes a batch while it checks it:
  // stage_new writes a job to a temporary in tmp/ (from any thread; fdatasync'ed when
  // `sync`), publish renames staged jobs into pending/ (after one syncfs for the whole
  // batch unless each was synced) and fsyncs pending/ once, discard removes them.
  struct Staged {
    std::string id;
    std::string tmp; // empty: not written
  };
  void stage_new(const Job& job, bool sync, Staged& out) const;
  std::vector<std::string> publish(const std::vector<Staged>& staged, bool synced);
  void discard(const std::vector<Staged>& staged, std::size_t from = 0) const;

  // Number of jobs per state, by counting directory entries (no job file is read).
  std::array<std::size_t, 5> counts() const;
  // The jobs in a state, oldest created_at first (ties by id), at most `max` of them:
  // the oldest. Unreadable or invalid files are skipped.
  std::vector<StoredJob> list(JobState s, std::size_t max = SIZE_MAX) const;
  // The same over every state.
  std::vector<StoredJob> list_all(std::size_t max = SIZE_MAX) const;

  // Pending or failed -> dead with last_error "cancelled". Error(failure) otherwise.
  void cancel(const std::string& id);
  // dead -> pending, attempts 0, next_run_at removed. Error(failure) if not dead.
  void retry_dead(const std::string& id);
  // Removes jobs (with their .log and .orig) whose updated_at is older than
  // `older_than_s` seconds (all when nullopt). Returns how many.
  std::size_t purge(JobState s, std::optional<double> older_than_s);

  // --- transitions used by workers (and the commands above) ---

  // Locks `<id>.json` in state `s` without blocking and checks that the name still refers
  // to the locked file. nullopt when it is missing or someone else holds it.
  std::optional<LockedJob> lock_job(JobState s, const std::string& id) const;

  // Moves a locked job to `to` (its log first), then replaces its content with `job`
  // (state set to `to`, updated_at now). The name stays locked throughout; afterwards
  // `locked.lock` holds the lock on the new file. The content is always fdatasync'ed
  // before it takes the name; with `sync`, `to` is fsync'ed too, else the caller does it
  // later (see sync_dir). Throws Error(failure) if `to` already holds that id; the job
  // then stays where it was.
  // With `spares`, the new content goes through a spare file (see Spares).
  void move(LockedJob& locked, JobState to, Job& job, bool sync, Spares* spares = nullptr);

  // Replaces the content of a locked job without moving it (same guarantees as move).
  void rewrite(LockedJob& locked, Job& job, bool sync, Spares* spares = nullptr);

  // rewrite() in two steps, for a caller with work to overlap with the fdatasync:
  // stage_rewrite writes `job` (state and updated_at set) to a locked dot-temp beside the
  // job, not yet synced; commit_rewrite syncs it and renames it over the job, after which
  // `locked.lock` holds the new file. A staged temp that is never committed is removed
  // by remove_stale_temps(). With `spares`, a spare file is filled and later exchanged.
  StagedRewrite stage_rewrite(const LockedJob& locked, Job& job, Spares* spares = nullptr) const;
  void commit_rewrite(LockedJob& locked, StagedRewrite& staged, bool sync);
  // Drops a staged rewrite that will not be committed: a temporary is removed, a spare
  // stays its Spares' spare.
  void discard_rewrite(StagedRewrite& staged) const;

  // Moves a locked job's file (its log first) to `to`, content unchanged. Throws
  // Error(failure) if `to` already holds that id.
  void rename_job(LockedJob& locked, JobState to);

  void sync_dir(JobState s) const;

  // Moves an invalid job file from `s` (locked by the caller) to dead/<file>.orig
  // unchanged and writes a dead/<id>.json record saying why (`fields`: the original's
  // fields when it was an object). Returns the record's id.
  std::string quarantine(JobState s, const std::string& file, const std::string& reason,
                         const Json& fields);

private:
  Spool() = default;
  void make_job_file(int dir, const std::string& name, std::string_view data, bool sync) const;
  // Fills this state's spare with `data` and returns its descriptor, locked; an empty Fd
  // when no spare can be had (the caller then creates a temporary as usual).
  Fd fill_spare(Spares& spares, JobState s, std::string_view data) const;

  std::filesystem::path m_root;
  Fd m_root_fd;
  Fd m_tmp;
  Fd m_workers;
  std::array<Fd, 5> m_dirs;
  mode_t m_file_mode = 0600;
  pid_t m_pid = 0; // names this process's temporaries
};

// "<id>.json" and "<id>.log".
std::string job_file(std::string_view id);
std::string log_file(std::string_view id);
// The id of a job file name ("x.json" -> "x"); nullopt for temporaries (leading '.'),
// other suffixes, and names that are not valid ids.
std::optional<std::string> id_of_file(std::string_view name);

} // namespace queuectl
