// spool: the directory tree, where a job is, what a state holds, and enqueueing.
//
//   SPOOL/tmp/         writers create job files here first; queuectl's temporaries
//   SPOOL/pending/     <id>.json  ready, or waiting for run_at or the jobs it comes after
//   SPOOL/held/        <id>.json  held: never started until released
//   SPOOL/processing/  <id>.json  claimed; <id>.log beside it
//   SPOOL/failed/      <id>.json  waiting for next_run_at
//   SPOOL/done/        <id>.json  completed
//   SPOOL/dead/        <id>.json  out of retries, cancelled or invalid (<name>.orig kept)
//   SPOOL/workers/     worker and supervisor records (see registry.hpp)
//   SPOOL/config.json
//
// A job's state is the directory its file is in. How a job moves between them, and the
// invariants that hold at every instant, are in transition.hpp.
#pragma once

#include "queuectl/config.hpp"
#include "queuectl/fd.hpp"
#include "queuectl/job.hpp"
#include "queuectl/sys.hpp"

#include <sys/stat.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace queuectl {

struct StoredJob {
  JobState state;
  Job job;
};

// A job file locked by this process (see transition.hpp for the protocol), with the
// bytes it held when locked.
struct LockedJob {
  std::string stem; // the file is <stem>.json (a drop-in's stem may not be a valid id)
  JobState state;
  Fd lock;
  std::string content; // empty when the file is larger than k_max_job_file
  std::size_t size = 0;
};

// A job file larger than this is quarantined unread: no file can make a worker read
// gigabytes into memory. A job is small; what grows large is its log.
inline constexpr std::size_t k_max_job_file = 64 << 20;

class Spool {
public:
  // --spool if given, else $QUEUECTL_SPOOL, else /var/spool/queuectl for root, else
  // ${XDG_STATE_HOME:-$HOME/.local/state}/queuectl. An empty --spool or QUEUECTL_SPOOL
  // is Error(usage), never the default.
  static std::filesystem::path resolve(const std::optional<std::string>& flag);

  // Opens the spool at `root`, creating it and any missing subdirectory (mode 0700 for a
  // new spool; a subdirectory takes the permission bits of the spool root): for the
  // commands that write (SPEC section 5). Throws Error.
  static Spool open(const std::filesystem::path& root);
  // Opens a spool that exists, creating nothing: Error(failure) saying how a spool comes
  // to exist when `root` does not, or that it is not a spool when a subdirectory is
  // missing.
  static Spool open_existing(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return m_root; }
  // The spool's directories, for the spool layer (spool, transition) and the modules of
  // their own files (the worker registry, the counters, the config).
  const sys::Dir& dir(JobState s) const { return m_dirs[static_cast<std::size_t>(s)]; }
  const sys::Dir& tmp() const { return m_tmp; }
  const sys::Dir& workers() const { return m_workers; }
  const sys::Dir& root_dir() const { return m_root_dir; }
  // The full path of `name` in a state directory, for messages.
  std::string path_of(JobState s, std::string_view name) const;
  std::string path_of(std::string_view subdir, std::string_view name) const;
  // Permission bits for files created in this spool: 0660 when the spool is shared with
  // a group (the packaged /var/spool/queuectl), else 0600.
  mode_t file_mode() const { return m_file_mode; }

  Config load_config() const;
  // Durably replaces config.json.
  void save_config(const Config& c) const;
  // Reads config.json, lets `change` edit it, and saves it when `change` returns true,
  // all under a lock, so that two commands changing different settings at once both
  // take effect.
  void update_config(const std::function<bool(Config&)>& change) const;

  // Calls `fn(stem)` for every job file in state `s`: "<stem>.json", not starting with a
  // dot, a regular file (or of unknown type). The stem may not be a valid id (a drop-in
  // named "bad name!.json"): callers that need ids check valid_id(). Every listing of a
  // state directory (counts, list, recovery, purge, the index, metrics) is this one.
  void for_each_job(JobState s, const std::function<void(std::string_view stem)>& fn) const;

  // Which state holds `id`: one fstatat per state directory, no scan; `except` is not
  // looked at. A job moving between two directories while it is looked for can be missed:
  // see id_taken().
  std::optional<JobState> find(const std::string& id, std::optional<JobState> except = std::nullopt) const;
  // As find(), checked twice in opposite orders so that a job moving between two
  // directories while it is looked for is still found.
  std::optional<JobState> locate(const std::string& id) const;
  bool id_taken(const std::string& id) const;
  // Opens <stem>.json of state `s` for reading, without following a symlink; an empty Fd
  // when it is gone. Throws Error when it is not a regular file. `st` gets its fstat.
  Fd open_job(JobState s, std::string_view stem, struct stat* st = nullptr) const;
  // lstat of <stem>.json of state `s`; nullopt when it is gone.
  std::optional<struct stat> stat_job(JobState s, std::string_view stem) const;
  // The job's log wherever it is (it follows its job between directories); an empty Fd
  // when there is none.
  Fd open_log(const std::string& id) const;
  // Loads and returns a job (its state field set from its directory). Throws
  // Error(usage) for a malformed id, Error(failure) when no state holds it.
  StoredJob load(const std::string& id) const;
  std::optional<StoredJob> try_load(const std::string& id) const;
  // A job file of state `s` as listings show it (see Job::read_from); nullopt when it is
  // gone. A file that cannot be read or is not a valid job is shown as what it is: its
  // fields where it is an object, its file's name as "id", and "invalid" saying why.
  std::optional<Job> read_listed(JobState s, const std::string& file) const;

  // Durably enqueues jobs already filled and validated (see enqueue.hpp for the checks
  // that come first), paying for durability once per batch: the data of all files, then
  // all renames (RENAME_NOREPLACE), then one fsync of pending/. Throws Error(failure) on
  // an id already in pending/ or an I/O error, saying how many were enqueued before it.
  std::vector<std::string> enqueue_batch(std::vector<Job>& jobs);

  // enqueue_batch in steps, for a caller that writes a batch while it checks it. The
  // temporaries' names are reserved for the whole batch (".queuectl.<pid>.<n>.new", n
  // counting from a base), so a batch costs one byte per job here whatever its size.
  class NewJobs {
  public:
    // `to`: pending, or held for jobs enqueued held (their content says so).
    NewJobs(const Spool& spool, std::size_t n, JobState to = JobState::pending);
    NewJobs(const NewJobs&) = delete;
    NewJobs& operator=(const NewJobs&) = delete;
    // Removes what was written and not published.
    ~NewJobs();
    // Writes job `i` to its temporary in tmp/ (from any thread; fdatasync'ed when `sync`).
    void write(std::size_t i, const Job& job, bool sync);
    // Renames the jobs into pending/<id_of(i)>.json (or held/) in order (RENAME_NOREPLACE), after one
    // syncfs for the whole batch unless each was synced, then fsyncs pending/ once. Every
    // job must have been written. Throws Error(failure) on an id already in pending/ or
    // an I/O error, saying how many were enqueued before it.
    void publish(const std::function<std::string(std::size_t)>& id_of, bool synced);

  private:
    std::string temp(std::size_t i) const;
    const Spool& m_spool;
    std::uint64_t m_base;
    std::vector<char> m_written;
    std::size_t m_published = 0;
    JobState m_to;
  };

  // Number of jobs per state, by counting directory entries (no job file is read).
  std::array<std::size_t, k_state_count> counts() const;
  // Number of jobs in one state, the same way.
  std::size_t count(JobState s) const;
  // The jobs in a state, oldest created_at first (ties by id), at most `max` of them:
  // the oldest. Unreadable or invalid files are skipped.
  std::vector<StoredJob> list(JobState s, std::size_t max = SIZE_MAX) const;
  // The same over every state.
  std::vector<StoredJob> list_all(std::size_t max = SIZE_MAX) const;

  // Locks <stem>.json of `s` with flock(2) without blocking, checks that the name still
  // refers to the locked file, and reads it. nullopt when it is missing or someone else
  // holds it (`busy` then says which). Throws Error for a file that is not regular.
  std::optional<LockedJob> lock_job(JobState s, const std::string& stem, bool* busy = nullptr) const;
  // The same for a descriptor the caller has locked already (e.g. after a blocking wait);
  // `opened`, if given, is its fstat (saves a system call).
  std::optional<LockedJob> adopt_lock(JobState s, const std::string& stem, Fd fd,
                                      const struct stat* opened = nullptr) const;

  void sync_dir(JobState s) const;

  // A new name for a temporary in tmp/: ".queuectl.<pid>.<n>.<kind>". The pid says whose
  // it is, for sweep_tmp().
  std::string temp_name(std::string_view kind) const;
  // The first of `n` consecutive serials for temp_name-like names (see NewJobs).
  std::uint64_t reserve_temps(std::size_t n) const;
  // Removes what processes that died left in tmp/: queuectl's temporaries whose process
  // is gone, and any file untouched for ten minutes (a drop-in writer's), unless someone
  // holds a lock on it. Cheap (tmp/ holds a handful of files): workers run it at start,
  // after recovering jobs, every minute, and when they stop.
  void sweep_tmp() const;
  // Removes dot-temporaries older than ten minutes that versions before 0.2 left in the
  // state directories. Reads every state directory: run it at start, not in a loop.
  void sweep_old_temps() const;

private:
  Spool() = default;
  static Spool open(const std::filesystem::path& root, bool create);

  std::filesystem::path m_root;
  sys::Dir m_root_dir;
  sys::Dir m_tmp;
  sys::Dir m_workers;
  std::array<sys::Dir, k_state_count> m_dirs;
  mode_t m_file_mode = 0600;
  pid_t m_pid = 0; // names this process's temporaries
};

// The name of a network (or shared-disk cluster) file system by its statfs(2) type, where
// flock, rename and inotify do not hold across machines; nullopt for any other type.
std::optional<std::string_view> network_fs_name(long fs_type);

// Whether a temporary of queuectl's in tmp/ has outlived its owner: the owner's process
// is gone (`owner_started` empty), or the process with that pid started after the file
// last changed (its ctime), so it is another one with the same pid.
bool temp_owner_gone(std::optional<Micros> owner_started, Micros changed);

// "<id>.json" and "<id>.log".
std::string job_file(std::string_view id);
std::string log_file(std::string_view id);
// The id of a job file name ("x.json" -> "x"); nullopt for temporaries (leading '.'),
// other suffixes, and names that are not valid ids.
std::optional<std::string> id_of_file(std::string_view name);
// The stem of a name a worker must look at in pending/ or failed/ ("x.json" -> "x"),
// valid id or not (a drop-in named "bad name!.json" is quarantined); nullopt for names
// not ending in .json and dot-files, which are ignored.
std::optional<std::string_view> stem_of_file(std::string_view name);

} // namespace queuectl
