#include "queuectl/spool.hpp"

#include "queuectl/error.hpp"
#include "queuectl/parallel.hpp"
#include "queuectl/stats.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

namespace queuectl {

namespace fs = std::filesystem;

std::string job_file(std::string_view id) { return std::string(id) + ".json"; }
std::string log_file(std::string_view id) { return std::string(id) + ".log"; }

std::optional<std::string> id_of_file(std::string_view name) {
  constexpr std::string_view ext = ".json";
  if (name.size() <= ext.size() || name[0] == '.' || name.substr(name.size() - ext.size()) != ext) {
    return std::nullopt;
  }
  std::string id(name.substr(0, name.size() - ext.size()));
  if (!valid_id(id)) {
    return std::nullopt;
  }
  return id;
}

fs::path Spool::resolve(const std::string& flag) {
  if (!flag.empty()) {
    return flag;
  }
  if (const char* env = std::getenv("QUEUECTL_SPOOL"); env && *env) {
    return env;
  }
  if (::geteuid() == 0) {
    return "/var/spool/queuectl";
  }
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg == '/') {
    return fs::path(xdg) / "queuectl";
  }
  const char* home = std::getenv("HOME");
  if (!home || !*home) {
    bad_usage("cannot find a spool: HOME is not set; pass --spool DIR or set QUEUECTL_SPOOL");
  }
  return fs::path(home) / ".local" / "state" / "queuectl";
}

namespace {

// mkdir -p for the spool root; new directories are 0700.
void make_root(const fs::path& root) {
  if (::mkdir(root.c_str(), 0700) == 0 || errno == EEXIST) {
    return;
  }
  if (errno == ENOENT && root.has_parent_path() && root.parent_path() != root) {
    make_root(root.parent_path());
    if (::mkdir(root.c_str(), 0700) == 0 || errno == EEXIST) {
      return;
    }
  }
  throw_errno("cannot create spool directory", root.string());
}

} // namespace

Spool Spool::open(const fs::path& root) {
  Spool s;
  s.m_root = root;
  s.m_pid = ::getpid();
  make_root(root);
  s.m_root_fd = sys::open_dir(root.string());
  struct stat st {};
  if (::fstat(s.m_root_fd.get(), &st) != 0) {
    throw_errno("cannot stat", root.string());
  }
  const mode_t dir_mode = st.st_mode & 07777;
  s.m_file_mode = (st.st_mode & 070) != 0 ? 0660 : 0600;
  // Open each subdirectory; create it only when it is missing (one syscall when not).
  const auto subdir = [&](const char* sub) {
    Fd fd(::openat(s.m_root_fd.get(), sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (fd || errno != ENOENT) {
      if (!fd) {
        struct stat lst {};
        if (errno == ENOTDIR && ::fstatat(s.m_root_fd.get(), sub, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(lst.st_mode)) {
          fail(fmt::format("'{}' is a symbolic link: a spool's subdirectories must be real directories on the "
                           "spool's file system (a job moves between them by rename); link the spool itself instead",
                           s.path_of(sub, "")));
        }
        throw_errno("cannot open directory", s.path_of(sub, ""));
      }
      return fd;
    }
    if (::mkdirat(s.m_root_fd.get(), sub, 0700) == 0) {
      // Same bits as the root (0700, or the package's group-shared mode); mkdir's
      // mode is filtered by the umask, so set it explicitly.
      if (::fchmodat(s.m_root_fd.get(), sub, dir_mode, 0) != 0) {
        throw_errno("cannot set permissions of", s.path_of(sub, ""));
      }
    } else if (errno != EEXIST) {
      throw_errno("cannot create spool directory", s.path_of(sub, ""));
    }
    return sys::open_dir_at(s.m_root_fd.get(), sub, s.path_of(sub, ""));
  };
  s.m_tmp = subdir("tmp");
  s.m_workers = subdir("workers");
  for (JobState st2 : k_all_states) {
    s.m_dirs[static_cast<std::size_t>(st2)] = subdir(std::string(state_dir(st2)).c_str());
  }
  return s;
}

std::string Spool::path_of(JobState s, std::string_view name) const {
  return path_of(state_dir(s), name);
}

std::string Spool::path_of(std::string_view subdir, std::string_view name) const {
  fs::path p = m_root / std::string(subdir);
  if (!name.empty()) {
    p /= std::string(name);
  }
  return p.string();
}

Config Spool::load_config() const {
  const std::string display = (m_root / "config.json").string();
  const auto text = sys::read_file_at(m_root_fd.get(), "config.json", display);
  return Config::parse(text.value_or(""), display);
}

void Spool::save_config(const Config& c) const {
  sys::write_file_atomic(m_root_fd.get(), "config.json", c.dump(), (m_root / "config.json").string(),
                         m_file_mode);
}

std::optional<JobState> Spool::find(const std::string& id) const {
  const std::string f = job_file(id);
  for (JobState s : k_all_states) {
    if (sys::exists_at(dir(s), f, path_of(s, f))) {
      return s;
    }
  }
  return std::nullopt;
}

bool Spool::id_taken(const std::string& id) const {
  if (find(id)) {
    return true;
  }
  // A job moving from a later directory to an earlier one while find() looked (dlq retry,
  // dead -> pending) is seen by a pass in the opposite order.
  const std::string f = job_file(id);
  for (auto it = k_all_states.rbegin(); it != k_all_states.rend(); ++it) {
    if (sys::exists_at(dir(*it), f, path_of(*it, f))) {
      return true;
    }
  }
  return false;
}

std::optional<StoredJob> Spool::try_load(const std::string& id) const {
  if (!valid_id(id)) {
    bad_usage(fmt::format("invalid job id '{}'", id));
  }
  const std::string f = job_file(id);
  // A job can move while we look; a second round finds it in its new place.
  for (int round = 0; round < 2; ++round) {
    for (JobState s : k_all_states) {
      const auto text = sys::read_file_at(dir(s), f, path_of(s, f));
      if (!text) {
        continue;
      }
      Json j = Json::parse(*text, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        fail(fmt::format("job file '{}' is not a JSON object", path_of(s, f)));
      }
      Job job(std::move(j));
      job.read_from(s);
      return StoredJob{s, std::move(job)};
    }
  }
  return std::nullopt;
}

std::optional<Job> Spool::read_listed(JobState s, const std::string& file) const {
  std::optional<std::string> text;
  try {
    text = sys::read_file_at(dir(s), file, path_of(s, file));
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!text) {
    return std::nullopt; // moved on while we listed
  }
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return std::nullopt;
  }
  Job job(std::move(j));
  job.read_from(s);
  return job;
}

StoredJob Spool::load(const std::string& id) const {
  auto sj = try_load(id);
  if (!sj) {
    fail(fmt::format("no such job '{}'", id));
  }
  return std::move(*sj);
}

void Spool::make_job_file(int dirfd, const std::string& name, std::string_view data, bool sync) const {
  Fd fd = sys::create_file_at(dirfd, name, data, sync, path_of("tmp", name), m_file_mode);
  if (::close(fd.release()) != 0) {
    const int err = errno;
    ::unlinkat(dirfd, name.c_str(), 0);
    throw_errno("cannot close", path_of("tmp", name), err);
  }
}

void Spool::stage_new(const Job& job, bool sync, Staged& out) const {
  static std::atomic<std::uint64_t> serial{0}; // a batch may repeat an id until checked
  out.id = job.id();
  std::string name = fmt::format("{}.{}.{}.json", out.id, m_pid, serial++);
  make_job_file(tmp_dir(), name, job.dump(), sync);
  out.tmp = std::move(name);
}

void Spool::discard(const std::vector<Staged>& staged, std::size_t from) const {
  for (std::size_t i = from; i < staged.size(); ++i) {
    if (!staged[i].tmp.empty()) {
      ::unlinkat(tmp_dir(), staged[i].tmp.c_str(), 0);
    }
  }
}

std::vector<std::string> Spool::publish(const std::vector<Staged>& staged, bool synced) {
  if (!synced) {
    try {
      // One flush for the data of the whole batch instead of one fsync per file.
      sys::syncfs_fd(tmp_dir(), path_of("tmp", ""));
    } catch (...) {
      discard(staged);
      throw;
    }
  }
  std::vector<std::string> ids;
  ids.reserve(staged.size());
  const int pending = dir(JobState::pending);
  const std::size_t n = staged.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::string f = job_file(staged[i].id);
    bool moved = false;
    try {
      moved = sys::rename_noreplace(tmp_dir(), staged[i].tmp, pending, f, path_of(JobState::pending, f));
    } catch (const Error& e) {
      discard(staged, i);
      if (i == 0) {
        throw;
      }
      fail(fmt::format("{} (the first {} of {} jobs were enqueued)", e.what(), i, n));
    }
    if (!moved) {
      discard(staged, i);
      fail(fmt::format("a job with id '{}' already exists{}", staged[i].id,
                       i == 0 ? std::string() : fmt::format(" (the first {} of {} jobs were enqueued)", i, n)));
    }
    ids.push_back(staged[i].id);
  }
  sys::fsync_fd(pending, path_of(JobState::pending, ""));
  return ids;
}

std::vector<std::string> Spool::enqueue_batch(std::vector<Job>& jobs) {
  const bool single = jobs.size() == 1; // one file: its own fdatasync beats a syncfs
  std::vector<Staged> staged(jobs.size());
  try {
    // File creation in one directory scales with threads (unlike the renames in
    // publish, which the kernel serialises across directories).
    for_chunks(jobs.size(), [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) {
        stage_new(jobs[i], single, staged[i]);
      }
    });
  } catch (...) {
    discard(staged);
    throw;
  }
  return publish(staged, single);
}

std::array<std::size_t, 5> Spool::counts() const {
  std::array<std::size_t, 5> c{};
  for (JobState s : k_all_states) {
    std::size_t n = 0;
    sys::for_each_entry(dir(s), path_of(s, ""), [&](std::string_view name, unsigned char type) {
      if ((type == DT_REG || type == DT_UNKNOWN) && name.size() > 5 && name[0] != '.' &&
          name.substr(name.size() - 5) == ".json") {
        ++n;
      }
      return true;
    });
    c[static_cast<std::size_t>(s)] = n;
  }
  return c;
}

namespace {

// A listed job with its sort key, taken once: oldest created_at first (a missing time
// sorts first), ties by id.
struct Listed {
  Micros created;
  std::string id;
  StoredJob job;

  bool operator<(const Listed& o) const { return created != o.created ? created < o.created : id < o.id; }
};

// Keeps the `max` oldest of `rows`, sorted.
void keep_oldest(std::vector<Listed>& rows, std::size_t max) {
  if (rows.size() > max) {
    std::nth_element(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(max), rows.end());
    rows.resize(max);
  }
  std::sort(rows.begin(), rows.end());
}

std::vector<StoredJob> jobs_of(std::vector<Listed>& rows) {
  std::vector<StoredJob> jobs;
  jobs.reserve(rows.size());
  for (Listed& r : rows) {
    jobs.push_back(std::move(r.job));
  }
  return jobs;
}

// Appends the jobs of one state, unsorted; when there are more than `max`, at least the
// `max` oldest.
void read_jobs(const Spool& spool, JobState s, std::size_t max, std::vector<Listed>& out) {
  const int dir = spool.dir(s);
  std::vector<std::string> names;
  sys::for_each_entry(dir, spool.path_of(s, ""), [&](std::string_view name, unsigned char type) {
    if ((type == DT_REG || type == DT_UNKNOWN) && id_of_file(name)) {
      names.emplace_back(name);
    }
    return true;
  });
  // Reading and parsing every file is the cost (a million pending jobs is a normal day):
  // it is spread over threads (more than the cores: uncached files wait on the disk). With
  // a limit, each thread keeps only the oldest `max` it has seen, so memory stays bounded
  // by the limit, not by the queue.
  std::mutex merge;
  for_chunks(names.size(), [&](std::size_t begin, std::size_t end) {
    std::vector<Listed> mine;
    for (std::size_t i = begin; i < end; ++i) {
      std::optional<Job> listed = spool.read_listed(s, names[i]);
      if (!listed) {
        continue;
      }
      Job& job = *listed;
      const Micros created = job.time_field("created_at").value_or(0);
      std::string id = job.id();
      mine.push_back(Listed{created, std::move(id), StoredJob{s, std::move(job)}});
      if (max < names.size() && mine.size() >= 2 * max + 1024) {
        keep_oldest(mine, max);
      }
    }
    const std::lock_guard<std::mutex> g(merge);
    std::move(mine.begin(), mine.end(), std::back_inserter(out));
  }, Work::io);
}

} // namespace

std::vector<StoredJob> Spool::list(JobState s, std::size_t max) const {
  std::vector<Listed> rows;
  read_jobs(*this, s, max, rows);
  keep_oldest(rows, max);
  return jobs_of(rows);
}

std::vector<StoredJob> Spool::list_all(std::size_t max) const {
  std::vector<Listed> rows;
  for (JobState s : k_all_states) {
    read_jobs(*this, s, max, rows);
    if (rows.size() > max) {
      keep_oldest(rows, max);
    }
  }
  keep_oldest(rows, max);
  return jobs_of(rows);
}

std::optional<LockedJob> Spool::lock_job(JobState s, const std::string& id) const {
  const std::string f = job_file(id);
  struct stat held {};
  Fd fd = sys::open_regular_at(dir(s), f, path_of(s, f), O_RDONLY, &held);
  if (!fd) {
    return std::nullopt;
  }
  if (!sys::try_lock(fd.get(), true)) {
    return std::nullopt;
  }
  // The name may have moved on (and a new file taken it) between open and flock.
  const auto now = sys::stat_at(dir(s), f, path_of(s, f));
  if (!now || now->st_ino != held.st_ino || now->st_dev != held.st_dev) {
    return std::nullopt;
  }
  // Job files are replaced, never edited, but a drop-in's writer may still be appending.
  std::string content = sys::read_regular(fd.get(), static_cast<std::size_t>(now->st_size), path_of(s, f));
  return LockedJob{id, s, std::move(fd), std::move(content)};
}

Spares::~Spares() {
  for (const Slot& slot : m_slots) {
    if (!slot.name.empty()) {
      ::unlinkat(slot.dir, slot.name.c_str(), 0);
    }
  }
}

Fd Spool::fill_spare(Spares& spares, JobState s, std::string_view data) const {
  Spares::Slot& slot = spares.m_slots[static_cast<std::size_t>(s)];
  const int d = dir(s);
  Fd fd;
  if (!slot.name.empty()) {
    // Our old descriptor may be shared with a command that has not exited; only a fresh
    // one that takes the lock proves nobody else holds this file.
    slot.fd.reset();
    fd = Fd(::openat(d, slot.name.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    struct stat st {};
    if (!fd || !sys::try_lock(fd.get(), true) || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      fd.reset();
      ::unlinkat(d, slot.name.c_str(), 0);
      slot.name.clear();
    }
  }
  try {
    if (!fd) {
      slot.name = fmt::format(".spare.{}.{}.tmp", spares.m_tag, spares.m_serial++);
      slot.dir = d;
      fd = sys::create_file_at(d, slot.name, {}, false, path_of(s, slot.name), m_file_mode, true);
      sys::lock(fd.get(), true);
    }
    // Overwritten in place, then cut to size: the file keeps its block, so nothing is
    // freed and allocated again.
    sys::write_all(fd.get(), data, path_of(s, slot.name));
    if (::ftruncate(fd.get(), static_cast<off_t>(data.size())) != 0) {
      throw_errno("cannot truncate", path_of(s, slot.name));
    }
  } catch (const Error&) {
    if (!slot.name.empty()) {
      ::unlinkat(d, slot.name.c_str(), 0);
      slot.name.clear();
    }
    return Fd();
  }
  return fd;
}

StagedRewrite Spool::stage_rewrite(const LockedJob& locked, Job& job, Spares* spares) const {
  const int d = dir(locked.state);
  job.set_state(locked.state);
  job.touch(now_micros());
  StagedRewrite st;
  st.state = locked.state;
  st.content = job.dump();
  if (spares && !spares->m_unsupported) {
    st.fd = fill_spare(*spares, locked.state, st.content);
    if (st.fd) {
      st.tmp = spares->m_slots[static_cast<std::size_t>(locked.state)].name;
      st.spares = spares;
      return st;
    }
  }
  st.tmp = fmt::format(".{}.{}.tmp", job_file(locked.id), m_pid);
  st.fd = sys::create_file_at(d, st.tmp, st.content, false, path_of(locked.state, st.tmp), m_file_mode, true);
  // Locked before it can take the name, so the name is never unlocked.
  sys::lock(st.fd.get(), true);
  return st;
}

void Spool::commit_rewrite(LockedJob& locked, StagedRewrite& st, bool sync) {
  const int d = dir(locked.state);
  const std::string f = job_file(locked.id);
  Spares::Slot* slot = st.spares ? &st.spares->m_slots[static_cast<std::size_t>(locked.state)] : nullptr;
  bool exchanged = false;
  try {
    // The data first: a crash then leaves the old content or the new, never a torn file.
    if (::fdatasync(st.fd.get()) != 0) {
      throw_errno("cannot sync", path_of(locked.state, st.tmp));
    }
    if (slot) {
      if (::renameat2(d, st.tmp.c_str(), d, f.c_str(), RENAME_EXCHANGE) == 0) {
        exchanged = true;
      } else if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
        st.spares->m_unsupported = true; // this file system: plain renames from now on
      } else {
        throw_errno("cannot replace", path_of(locked.state, f));
      }
    }
    if (!exchanged && ::renameat(d, st.tmp.c_str(), d, f.c_str()) != 0) {
      throw_errno("cannot replace", path_of(locked.state, f));
    }
  } catch (...) {
    ::unlinkat(d, st.tmp.c_str(), 0);
    if (slot) {
      slot->name.clear();
    }
    throw;
  }
  if (slot) {
    if (exchanged) {
      slot->fd = std::move(locked.lock); // the old inode is the spare now
    } else {
      slot->name.clear(); // the spare became the job
    }
  }
  if (sync) {
    sys::fsync_fd(d, path_of(locked.state, ""));
  }
  // Without an exchange the old inode is gone from every directory; its lock goes with it.
  locked.lock = std::move(st.fd);
  locked.content = std::move(st.content);
}

void Spool::discard_rewrite(StagedRewrite& st) const {
  if (!st.spares && !st.tmp.empty() && st.fd) {
    ::unlinkat(dir(st.state), st.tmp.c_str(), 0);
  }
  st.fd.reset();
  st.tmp.clear();
}

void Spool::rewrite(LockedJob& locked, Job& job, bool sync, Spares* spares) {
  StagedRewrite st = stage_rewrite(locked, job, spares);
  commit_rewrite(locked, st, sync);
}

void Spool::rename_job(LockedJob& locked, JobState to) {
  const int from_d = dir(locked.state);
  const int to_d = dir(to);
  const std::string f = job_file(locked.id);
  const std::string l = log_file(locked.id);
  if (to == locked.state) {
    return;
  }
  // The log first: if we die between the two renames, the job is still where it was
  // and `logs` finds the log by looking in every state directory.
  sys::rename_noreplace(from_d, l, to_d, l, path_of(locked.state, l), true);
  if (!sys::rename_noreplace(from_d, f, to_d, f, path_of(locked.state, f))) {
    ::renameat2(to_d, l.c_str(), from_d, l.c_str(), RENAME_NOREPLACE); // the log goes back
    fail(fmt::format("cannot move job '{}' to {}/: a job with that id is already there", locked.id,
                     state_dir(to)));
  }
  locked.state = to;
}

void Spool::move(LockedJob& locked, JobState to, Job& job, bool sync, Spares* spares) {
  rename_job(locked, to);
  rewrite(locked, job, sync, spares);
}

void Spool::sync_dir(JobState s) const { sys::fsync_fd(dir(s), path_of(s, "")); }

std::string Spool::quarantine(JobState s, const std::string& file, const std::string& reason,
                              const Json& fields) {
  const int dead = dir(JobState::dead);
  std::string orig = file + ".orig";
  for (int n = 1; !sys::rename_noreplace(dir(s), file, dead, orig, path_of(s, file)); ++n) {
    orig = fmt::format("{}.{}.orig", file, n);
  }
  sys::fsync_fd(dead, path_of(JobState::dead, ""));
  std::string rid;
  const std::string stem = file.size() > 5 && file.substr(file.size() - 5) == ".json"
                               ? file.substr(0, file.size() - 5)
                               : file;
  if (valid_id(stem) && !id_taken(stem)) {
    rid = stem;
  } else {
    rid = generate_id();
  }
  Json rec = fields.is_object() ? fields : Json::object();
  rec["id"] = rid;
  rec["state"] = "dead";
  const Micros now = now_micros();
  if (!rec.contains("created_at") || !rec["created_at"].is_string()) {
    rec["created_at"] = format_time(now);
  }
  rec["updated_at"] = format_time(now);
  rec["last_error"] = reason;
  rec["original_file"] = orig;
  const std::string name = job_file(rid);
  const std::string tmp = "." + name + ".q.tmp";
  ::unlinkat(dead, tmp.c_str(), 0);
  make_job_file(dead, tmp, Job(rec).dump(), true);
  if (!sys::rename_noreplace(dead, tmp, dead, name, path_of(JobState::dead, name))) {
    ::unlinkat(dead, tmp.c_str(), 0);
    fail(fmt::format("cannot write dead-letter record '{}': it exists", path_of(JobState::dead, name)));
  }
  sys::fsync_fd(dead, path_of(JobState::dead, ""));
  return rid;
}

void Spool::cancel(const std::string& id) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const StoredJob sj = load(id);
    if (sj.state != JobState::pending && sj.state != JobState::failed) {
      fail(fmt::format("cannot cancel job '{}': it is {} (only pending and failed jobs can be "
                       "cancelled)",
                       id, state_name(sj.state)));
    }
    auto locked = lock_job(sj.state, id);
    if (!locked) {
      continue; // a worker is claiming it or it just moved: look again
    }
    Json j = Json::parse(locked->content, nullptr, false);
    Job job(j.is_object() ? std::move(j) : Json::object());
    job.json()["last_error"] = "cancelled";
    move(*locked, JobState::dead, job, true);
    record_stats(*this, StatsEvent{Counter::jobs_dead, std::nullopt, std::nullopt});
    return;
  }
  fail(fmt::format("cannot cancel job '{}': a worker is claiming it right now", id));
}

void Spool::retry_dead(const std::string& id) {
  const StoredJob sj = load(id);
  if (sj.state != JobState::dead) {
    fail(fmt::format("cannot retry job '{}': it is {}, not dead", id, state_name(sj.state)));
  }
  if (sj.job.json().contains("original_file")) {
    fail(fmt::format("cannot retry job '{}': it was an invalid file ({}); fix it and enqueue it "
                     "again",
                     id, path_of(JobState::dead, sj.job.json().value("original_file", ""))));
  }
  auto locked = lock_job(JobState::dead, id);
  if (!locked) {
    fail(fmt::format("cannot retry job '{}': another command is moving it", id));
  }
  Json j = Json::parse(locked->content, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    fail(fmt::format("cannot retry job '{}': its file is not a JSON object", id));
  }
  Job job(std::move(j));
  job.json()["attempts"] = 0;
  job.json().erase("next_run_at");
  move(*locked, JobState::pending, job, true);
  record_stats(*this, StatsEvent{Counter::jobs_retried, std::nullopt, std::nullopt});
}

std::size_t Spool::purge(JobState s, std::optional<double> older_than_s) {
  const Micros now = now_micros();
  std::size_t n = 0;
  std::vector<std::string> ids;
  sys::for_each_entry(dir(s), path_of(s, ""), [&](std::string_view name, unsigned char) {
    if (auto id = id_of_file(name)) {
      ids.push_back(std::move(*id));
    }
    return true;
  });
  const int d = dir(s);
  for (const std::string& id : ids) {
    auto locked = lock_job(s, id);
    if (!locked) {
      continue;
    }
    Json j = Json::parse(locked->content, nullptr, false);
    if (older_than_s) {
      std::optional<Micros> updated;
      if (j.is_object()) {
        updated = Job(j).time_field("updated_at");
      }
      if (!updated) {
        struct stat st {};
        ::fstat(locked->lock.get(), &st);
        updated = static_cast<Micros>(st.st_mtime) * 1'000'000;
      }
      if (now - *updated < seconds_to_micros(*older_than_s)) {
        continue;
      }
    }
    if (j.is_object()) {
      const auto it = j.find("original_file");
      if (it != j.end() && it->is_string()) {
        const std::string orig = it->get<std::string>();
        if (orig.find('/') == std::string::npos && orig.size() > 5 &&
            orig.substr(orig.size() - 5) == ".orig") {
          sys::unlink_at(d, orig, path_of(s, orig));
        }
      }
    }
    sys::unlink_at(d, log_file(id), path_of(s, log_file(id)));
    sys::unlink_at(d, job_file(id), path_of(s, job_file(id)));
    ++n;
  }
  if (n > 0) {
    sys::fsync_fd(d, path_of(s, ""));
  }
  return n;
}

} // namespace queuectl
