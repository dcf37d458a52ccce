#include "queuectl/spool.hpp"

#include "queuectl/error.hpp"
#include "queuectl/parallel.hpp"
#include "queuectl/pending_index.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

namespace queuectl {

namespace fs = std::filesystem;

std::string job_file(std::string_view id) {
  return std::string(id) + ".json";
}
std::string log_file(std::string_view id) {
  return std::string(id) + ".log";
}

std::optional<std::string> id_of_file(std::string_view name) {
  const auto stem = stem_of_file(name);
  if (!stem || !valid_id(*stem)) {
    return std::nullopt;
  }
  return std::string(*stem);
}

std::optional<std::string_view> stem_of_file(std::string_view name) {
  constexpr std::string_view ext = ".json";
  if (name.size() <= ext.size() || name[0] == '.' || name.substr(name.size() - ext.size()) != ext) {
    return std::nullopt;
  }
  return name.substr(0, name.size() - ext.size());
}

fs::path Spool::resolve(const std::optional<std::string>& flag) {
  if (flag) {
    if (flag->empty()) {
      bad_usage("--spool is empty: give the spool's directory");
    }
    return *flag;
  }
  if (const char* env = std::getenv("QUEUECTL_SPOOL")) {
    if (!*env) {
      bad_usage("QUEUECTL_SPOOL is set but empty: set it to the spool's directory, or unset it for the default");
    }
    return env;
  }
  if (sys::is_root()) {
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

Spool Spool::open(const fs::path& root) {
  return open(root, true);
}

Spool Spool::open_existing(const fs::path& root) {
  return open(root, false);
}

std::optional<std::string_view> network_fs_name(long fs_type) {
  // From linux/magic.h and the file systems' own headers (not all of them are there);
  // FUSE is left out: sshfs is remote, most FUSE file systems are not, and f_type cannot tell.
  struct Known {
    unsigned long magic;
    std::string_view name;
  };
  static constexpr Known k_network[] = {
      {0x6969, "NFS"},        {0x517B, "SMB"},      {0xFF534D42, "CIFS"},     {0xFE534D42, "SMB2"},
      {0x00C36400, "CephFS"}, {0x5346414F, "AFS"},  {0x6B414653, "AFS"},      {0x73757245, "Coda"},
      {0x564C, "NCP"},        {0x01021997, "9P"},   {0x0BD00BD0, "Lustre"},   {0x47504653, "GPFS"},
      {0x7461636F, "OCFS2"},  {0x01161970, "GFS2"}, {0x013111A8, "IBRIX"},    {0x19830326, "BeeGFS"},
      {0xAAD7AAEA, "PanFS"},  {0x61636673, "ACFS"}, {0xBEEFDEAD, "StorNext"},
  };
  const auto magic = static_cast<unsigned long>(fs_type) & 0xFFFFFFFFUL;
  for (const Known& k : k_network) {
    if (k.magic == magic) {
      return k.name;
    }
  }
  return std::nullopt;
}

namespace {

// A spool on a network file system is refused before anything is made there.
void check_local(const fs::path& root) {
  const auto type = sys::fs_type(root);
  if (!type) {
    return; // the open that follows says what is wrong
  }
  if (const auto name = network_fs_name(*type)) {
    fail(fmt::format("'{}' is on {}, a network file system, where the locks, renames and change events a spool "
                     "relies on do not hold across machines: keep each machine's spool on a local disk and share "
                     "work between machines with 'queuectl cluster join' (see queuectl-cluster(1))",
                     root.string(), *name));
  }
}

} // namespace

Spool Spool::open(const fs::path& root, bool create) {
  check_local(root);
  Spool s;
  s.m_root = root;
  s.m_pid = sys::own_pid();
  if (create) {
    sys::make_directories(root); // new ones 0700
  } else if (!sys::path_exists(root)) {
    fail(fmt::format("no spool at '{}': a spool is created by the first 'queuectl enqueue', 'worker start' or "
                     "'config set' (check --spool and QUEUECTL_SPOOL)",
                     root.string()));
  }
  s.m_root_dir = sys::Dir::open(root.string());
  const struct stat st = sys::stat_of(s.m_root_dir.fd(), root.string());
  const mode_t dir_mode = st.st_mode & 07777;
  s.m_file_mode = (st.st_mode & 070) != 0 ? 0660 : 0600;
  // Open each subdirectory; create it only when it is missing (one syscall when not).
  const auto subdir = [&](const std::string& sub) {
    sys::Dir d = s.m_root_dir.try_subdir(sub);
    if (d) {
      return d;
    }
    if (errno != ENOENT) {
      const auto lst = s.m_root_dir.stat(sub);
      if (lst && S_ISLNK(lst->st_mode)) {
        fail(fmt::format("'{}' is a symbolic link: a spool's subdirectories must be real directories on the "
                         "spool's file system (a job moves between them by rename); link the spool itself instead",
                         s.path_of(sub, "")));
      }
      return s.m_root_dir.subdir(sub); // throws, saying why
    }
    if (!create && sub != "held") { // held/ came with queuectl 0.4: an older spool gets it now
      fail(fmt::format("'{}' is not a queuectl spool: it has no {}/ directory (check --spool and QUEUECTL_SPOOL)",
                       root.string(), sub));
    }
    // Same bits as the root (0700, or the package's group-shared mode).
    s.m_root_dir.make_subdir(sub, dir_mode);
    return s.m_root_dir.subdir(sub);
  };
  s.m_tmp = subdir("tmp");
  s.m_workers = subdir("workers");
  for (JobState st2 : k_all_states) {
    s.m_dirs[static_cast<std::size_t>(st2)] = subdir(std::string(state_dir(st2)));
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
  const auto text = m_root_dir.read_file("config.json");
  return Config::parse(text.value_or(""), m_root_dir.path_of("config.json"));
}

void Spool::save_config(const Config& c) const {
  m_root_dir.write_atomic("config.json", c.dump(), m_file_mode);
}

void Spool::update_config(const std::function<bool(Config&)>& change) const {
  sys::LockFile lock = sys::LockFile::open(m_root_dir, ".config.lock", m_file_mode);
  lock.lock();
  Config c = load_config();
  if (change(c)) {
    save_config(c);
  }
}

void Spool::for_each_job(JobState s, const std::function<void(std::string_view stem)>& fn) const {
  dir(s).for_each([&](std::string_view name, unsigned char type) {
    if (type == DT_REG || type == DT_UNKNOWN) {
      if (const auto stem = stem_of_file(name)) {
        fn(*stem);
      }
    }
    return true;
  });
}

std::optional<JobState> Spool::find(const std::string& id, std::optional<JobState> except) const {
  const std::string f = job_file(id);
  for (JobState s : k_all_states) {
    if (s != except && dir(s).exists(f)) {
      return s;
    }
  }
  return std::nullopt;
}

std::optional<JobState> Spool::locate(const std::string& id) const {
  if (const auto s = find(id)) {
    return s;
  }
  // A job moving from a later directory to an earlier one while find() looked (dlq retry,
  // dead -> pending, release) is seen by a pass in the opposite order.
  const std::string f = job_file(id);
  for (auto it = k_all_states.rbegin(); it != k_all_states.rend(); ++it) {
    if (dir(*it).exists(f)) {
      return *it;
    }
  }
  return std::nullopt;
}

bool Spool::id_taken(const std::string& id) const {
  return locate(id).has_value();
}

Fd Spool::open_job(JobState s, std::string_view stem, struct stat* st) const {
  return dir(s).open_regular(job_file(stem), O_RDONLY, st);
}

std::optional<struct stat> Spool::stat_job(JobState s, std::string_view stem) const {
  return dir(s).stat(job_file(stem));
}

Fd Spool::open_log(const std::string& id) const {
  const std::string name = log_file(id);
  // A log can move while we look; a second round finds it in its new place.
  for (int round = 0; round < 2; ++round) {
    for (JobState s : k_all_states) {
      if (Fd fd = dir(s).open_regular(name)) {
        return fd;
      }
    }
  }
  return Fd();
}

std::optional<StoredJob> Spool::try_load(const std::string& id) const {
  if (!valid_id(id)) {
    bad_usage(fmt::format("invalid job id '{}'", id));
  }
  const std::string f = job_file(id);
  // A job can move while we look; a second round finds it in its new place.
  for (int round = 0; round < 2; ++round) {
    for (JobState s : k_all_states) {
      const auto text = dir(s).read_file(f);
      if (!text) {
        continue;
      }
      std::string why;
      std::optional<Job> job = Job::try_parse(*text, why);
      if (!job) {
        fail(fmt::format("job file '{}' is not a valid job: {}", path_of(s, f), why));
      }
      job->read_from(s, id);
      return StoredJob{s, std::move(*job)};
    }
  }
  return std::nullopt;
}

std::optional<Job> Spool::read_listed(JobState s, const std::string& file) const {
  const std::string stem(stem_of_file(file).value_or(file));
  std::optional<std::string> text;
  std::string why;
  try {
    text = dir(s).read_file(file);
    if (!text) {
      return std::nullopt; // moved on while we listed
    }
  } catch (const Error& e) {
    why = e.what(); // unreadable: listed as what it is
  }
  std::optional<Job> job;
  if (text) {
    job = Job::try_parse(*text, why);
  }
  if (job) {
    try {
      job->validate();
    } catch (const Error& e) {
      why = e.what();
    }
  }
  if (!why.empty()) {
    // A damaged or foreign file: shown as what it is, under its file's name, and the
    // rest of the spool is listed all the same.
    Json j = job ? job->json() : Json::object();
    if (!j.contains("id") || !j["id"].is_string()) {
      j["id"] = stem;
    }
    j["invalid"] = why;
    job = Job(std::move(j));
  }
  job->read_from(s, stem);
  return job;
}

StoredJob Spool::load(const std::string& id) const {
  auto sj = try_load(id);
  if (!sj) {
    throw NotFound(fmt::format("no such job '{}'", id));
  }
  return std::move(*sj);
}

Spool::NewJobs::NewJobs(const Spool& spool, std::size_t n, JobState to)
    : m_spool(spool), m_base(spool.reserve_temps(n)), m_written(n), m_to(to) {}

Spool::NewJobs::~NewJobs() {
  for (std::size_t i = m_published; i < m_written.size(); ++i) {
    if (m_written[i]) {
      m_spool.m_tmp.remove_quietly(temp(i));
    }
  }
}

std::string Spool::NewJobs::temp(std::size_t i) const {
  return fmt::format(".queuectl.{}.{}.new", m_spool.m_pid, m_base + i);
}

void Spool::NewJobs::write(std::size_t i, const Job& job, bool sync) {
  const std::string name = temp(i);
  Fd fd = m_spool.m_tmp.create(name, job.dump(), sync, m_spool.m_file_mode);
  m_written[i] = 1;                            // before close: a failing close still leaves the file to remove
  sys::close(fd, m_spool.m_tmp.path_of(name)); // a write's error may show only here
}

void Spool::NewJobs::publish(const std::function<std::string(std::size_t)>& id_of, bool synced) {
  if (!synced) {
    // One flush for the data of the whole batch instead of one fsync per file.
    m_spool.m_tmp.sync_file_system();
  }
  const sys::Dir& pending = m_spool.dir(m_to);
  const std::size_t n = m_written.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::string id = id_of(i);
    bool moved = false;
    try {
      moved = m_spool.m_tmp.move_noreplace(temp(i), pending, job_file(id));
    } catch (const Error& e) {
      if (i == 0) {
        throw;
      }
      fail(fmt::format("{} (the first {} of {} jobs were enqueued)", e.what(), i, n));
    }
    if (!moved) {
      fail(fmt::format("a job with id '{}' already exists{}", id,
                       i == 0 ? std::string() : fmt::format(" (the first {} of {} jobs were enqueued)", i, n)));
    }
    m_published = i + 1;
  }
  pending.sync();
}

std::vector<std::string> Spool::enqueue_batch(std::vector<Job>& jobs) {
  const bool single = jobs.size() == 1; // one file: its own fdatasync beats a syncfs
  const bool held = !jobs.empty() && jobs[0].state() == JobState::held;
  NewJobs batch(*this, jobs.size(), held ? JobState::held : JobState::pending);
  // File creation in one directory scales with threads (unlike the renames in publish,
  // which the kernel serialises across directories).
  for_chunks(jobs.size(), [&](std::size_t begin, std::size_t end) {
    pending_index::Appender order(*this); // the jobs' lines, before any is published
    for (std::size_t i = begin; i < end; ++i) {
      batch.write(i, jobs[i], single);
      order.add(jobs[i]);
    }
  });
  batch.publish([&](std::size_t i) { return jobs[i].id(); }, single);
  std::vector<std::string> ids;
  ids.reserve(jobs.size());
  for (const Job& j : jobs) {
    ids.push_back(j.id());
  }
  return ids;
}

std::array<std::size_t, k_state_count> Spool::counts() const {
  std::array<std::size_t, k_state_count> c{};
  for (JobState s : k_all_states) {
    c[static_cast<std::size_t>(s)] = count(s);
  }
  return c;
}

std::size_t Spool::count(JobState s) const {
  std::size_t n = 0;
  for_each_job(s, [&](std::string_view) { ++n; });
  return n;
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
  std::vector<std::string> names;
  spool.for_each_job(s, [&](std::string_view stem) { names.push_back(job_file(stem)); });
  // Reading and parsing every file is the cost (a million pending jobs is a normal day):
  // it is spread over threads (more than the cores: uncached files wait on the disk). With
  // a limit, each thread keeps only the oldest `max` it has seen, so memory stays bounded
  // by the limit, not by the queue.
  std::mutex merge;
  for_chunks(
      names.size(),
      [&](std::size_t begin, std::size_t end) {
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
      },
      Work::io);
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

std::optional<LockedJob> Spool::lock_job(JobState s, const std::string& stem, bool* busy) const {
  if (busy) {
    *busy = false;
  }
  struct stat st {};
  Fd fd = dir(s).open_regular(job_file(stem), O_RDONLY, &st);
  if (!fd) {
    return std::nullopt;
  }
  if (!sys::try_lock(fd.get(), true, dir(s).path_of(job_file(stem)))) {
    if (busy) {
      *busy = true;
    }
    return std::nullopt;
  }
  return adopt_lock(s, stem, std::move(fd), &st);
}

std::optional<LockedJob> Spool::adopt_lock(JobState s, const std::string& stem, Fd fd,
                                           const struct stat* opened) const {
  const std::string f = job_file(stem);
  // Its inode is the one open_regular's fstat saw: a descriptor's file never changes.
  const struct stat held = opened ? *opened : sys::stat_of(fd.get(), dir(s).path_of(f));
  // The name may have moved on (and a new file taken it) between open and flock.
  const auto now = dir(s).stat(f);
  if (!now || now->st_ino != held.st_ino || now->st_dev != held.st_dev) {
    return std::nullopt;
  }
  LockedJob j{stem, s, std::move(fd), {}, static_cast<std::size_t>(now->st_size)};
  if (j.size <= k_max_job_file) {
    // Job files are replaced, never edited, but a drop-in's writer may still be appending.
    j.content = sys::read_regular(j.lock.get(), j.size, dir(s).path_of(f));
  }
  return j;
}

void Spool::sync_dir(JobState s) const {
  dir(s).sync();
}

namespace {
std::atomic<std::uint64_t> g_temp_serial{0}; // one count per process: every name differs
} // namespace

std::string Spool::temp_name(std::string_view kind) const {
  return fmt::format(".queuectl.{}.{}.{}", m_pid, g_temp_serial++, kind);
}

std::uint64_t Spool::reserve_temps(std::size_t n) const {
  return g_temp_serial.fetch_add(n);
}

namespace {

constexpr Micros k_stale_after = 600'000'000; // ten minutes

// The pid in ".queuectl.<pid>.<n>.<kind>"; 0 for other names.
pid_t owner_of(std::string_view name) {
  constexpr std::string_view prefix = ".queuectl.";
  if (name.substr(0, prefix.size()) != prefix) {
    return 0;
  }
  name.remove_prefix(prefix.size());
  pid_t pid = 0;
  for (char c : name.substr(0, name.find('.'))) {
    if (c < '0' || c > '9' || pid > 100'000'000) {
      return 0;
    }
    pid = pid * 10 + (c - '0');
  }
  return pid;
}

// Removes `name` from `dir` if it is a regular file nobody holds a lock on.
void remove_unlocked(const sys::Dir& dir, const std::string& name) {
  Fd fd = dir.try_open(name, O_RDONLY | O_NONBLOCK);
  if (fd && S_ISREG(sys::stat_of(fd.get(), dir.path_of(name)).st_mode) &&
      sys::try_lock(fd.get(), true, dir.path_of(name))) {
    dir.remove(name);
  }
}

} // namespace

bool temp_owner_gone(std::optional<Micros> owner_started, Micros changed) {
  // The start time is known to the second (the boot time is), hence the slack.
  return !owner_started || *owner_started > changed + 2'000'000;
}

void Spool::sweep_tmp() const {
  const Micros now = now_micros();
  std::vector<std::string> names;
  m_tmp.for_each([&](std::string_view name, unsigned char) {
    names.emplace_back(name);
    return true;
  });
  std::unordered_map<pid_t, std::optional<Micros>> started; // of each owner, read once
  for (const std::string& n : names) {
    const pid_t owner = owner_of(n);
    bool stale = false;
    if (owner == 0) {
      // Not queuectl's: another writer's, left for ten minutes.
      const auto st = m_tmp.stat(n);
      stale = st && now - sys::mtime_micros(*st) > k_stale_after;
    } else if (owner != m_pid) {
      // queuectl's: its owner's while that process lives, however long it takes (a
      // batch of millions may write for many minutes). A process that started after
      // the file was last changed is another one with the same pid: the owner is gone.
      // Changed, not written: a spare is often a job's old inode, swapped in by
      // RENAME_EXCHANGE with the mtime of the job's last write, long before its owner
      // started; the exchange sets its ctime.
      auto [it, fresh] = started.try_emplace(owner);
      if (fresh) {
        it->second = sys::process_started(owner);
      }
      if (const auto st = m_tmp.stat(n)) {
        stale = temp_owner_gone(it->second, sys::ctime_micros(*st));
      }
    }
    if (stale) {
      remove_unlocked(m_tmp, n);
    }
  }
}

void Spool::sweep_old_temps() const {
  const Micros now = now_micros();
  for (JobState s : k_all_states) {
    std::vector<std::string> names;
    dir(s).for_each([&](std::string_view name, unsigned char) {
      if (name.size() > 5 && name[0] == '.' && name.substr(name.size() - 4) == ".tmp") {
        names.emplace_back(name);
      }
      return true;
    });
    for (const std::string& n : names) {
      if (const auto st = dir(s).stat(n); st && now - sys::mtime_micros(*st) > k_stale_after) {
        remove_unlocked(dir(s), n);
      }
    }
  }
}

} // namespace queuectl
