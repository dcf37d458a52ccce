#include "queuectl/sys.hpp"

#include "queuectl/error.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <linux/close_range.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

extern char** environ;

namespace queuectl::sys {

// --- descriptors ---------------------------------------------------------------------

void write_all(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno("cannot write", what);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void write_all_at(int fd, std::string_view data, off_t offset, std::string_view what) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno("cannot write", what);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += n;
  }
}

std::string read_all(int fd, std::string_view what) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno("cannot read", what);
    }
    if (n == 0) {
      return out;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
}

std::string read_some(int fd, std::size_t max, std::string_view what) {
  std::string out(max, '\0');
  for (;;) {
    const ssize_t n = ::read(fd, out.data(), out.size());
    if (n >= 0) {
      out.resize(static_cast<std::size_t>(n));
      return out;
    }
    if (errno != EINTR) {
      throw_errno("cannot read", what);
    }
  }
}

std::string read_at(int fd, std::size_t max, off_t offset, std::string_view what) {
  std::string out(max, '\0');
  for (;;) {
    const ssize_t n = ::pread(fd, out.data(), out.size(), offset);
    if (n >= 0) {
      out.resize(static_cast<std::size_t>(n));
      return out;
    }
    if (errno != EINTR) {
      throw_errno("cannot read", what);
    }
  }
}

std::string read_regular(int fd, std::size_t size, std::string_view what) {
  std::string out(size + 1, '\0'); // one byte more: a full read means the file grew
  std::size_t len = 0;
  for (;;) {
    const ssize_t n = ::read(fd, out.data() + len, out.size() - len);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno("cannot read", what);
    }
    len += static_cast<std::size_t>(n);
    if (n == 0 || len < out.size()) {
      out.resize(len);
      return out;
    }
    out.resize(out.size() * 2);
  }
}

void sync_data(int fd, std::string_view what) {
  if (::fdatasync(fd) != 0) {
    throw_errno("cannot sync", what);
  }
}

void truncate(int fd, off_t size, std::string_view what) {
  if (::ftruncate(fd, size) != 0) {
    throw_errno("cannot truncate", what);
  }
}

struct stat stat_of(int fd, std::string_view what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw_errno("cannot stat", what);
  }
  return st;
}

std::int64_t mtime_micros(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000 + st.st_mtim.tv_nsec / 1000;
}

std::int64_t ctime_micros(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000 + st.st_ctim.tv_nsec / 1000;
}

void close(Fd& fd, std::string_view what) {
  if (::close(fd.release()) != 0) {
    throw_errno("cannot close", what);
  }
}

bool try_lock(int fd, bool exclusive, std::string_view what) {
  for (;;) {
    if (::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
      return true;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EWOULDBLOCK) {
      return false;
    }
    throw_errno("cannot lock", what);
  }
}

void lock(int fd, bool exclusive, std::string_view what) {
  while (::flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) {
      throw_errno("cannot lock", what);
    }
  }
}

void unlock(int fd) {
  ::flock(fd, LOCK_UN);
}

LockFile LockFile::open(const Dir& dir, const std::string& name, mode_t mode) {
  Fd fd = dir.try_open(name, O_RDWR | O_CREAT, mode);
  if (!fd) {
    throw_errno("cannot open", dir.path_of(name));
  }
  return LockFile(std::move(fd), dir.path_of(name));
}

LockFile LockFile::open_existing(const Dir& dir, const std::string& name) {
  Fd fd = dir.try_open(name, O_RDONLY);
  if (!fd) {
    if (errno == ENOENT) {
      return {};
    }
    throw_errno("cannot open", dir.path_of(name));
  }
  return LockFile(std::move(fd), dir.path_of(name));
}

void LockFile::lock(bool exclusive) const {
  sys::lock(m_fd.get(), exclusive, m_what);
}

bool LockFile::try_lock(bool exclusive) const {
  return sys::try_lock(m_fd.get(), exclusive, m_what);
}

void LockFile::unlock() const {
  sys::unlock(m_fd.get());
}

Fd open_path(const std::string& path, int flags, mode_t mode) {
  return Fd(::open(path.c_str(), flags | O_CLOEXEC, mode));
}

int dev_null() {
  // Opened once per process (close-on-exec; children dup2 it onto their standard input).
  static const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw_errno("cannot open", "/dev/null");
  }
  return fd;
}

// --- directories ---------------------------------------------------------------------

namespace {

// The process's umask, read once. umask(2) cannot only read, so it is set and put back
// at once: a file another thread creates in between is then filtered less, never more,
// which is what every caller here wants (modes are set explicitly).
mode_t current_umask() {
  static const mode_t mask = [] {
    const mode_t m = ::umask(0);
    ::umask(m);
    return m;
  }();
  return mask;
}

} // namespace

void make_directories(const std::filesystem::path& path) {
  if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) {
    return;
  }
  if (errno == ENOENT && path.has_parent_path() && path.parent_path() != path) {
    make_directories(path.parent_path());
    if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) {
      return;
    }
  }
  throw_errno("cannot create directory", path.string());
}

bool path_exists(const std::filesystem::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 || errno != ENOENT;
}

std::optional<long> fs_type(const std::filesystem::path& path) {
  std::filesystem::path p = path;
  for (;;) {
    struct statfs st {};
    if (::statfs(p.c_str(), &st) == 0) {
      return static_cast<long>(st.f_type);
    }
    if (errno != ENOENT || !p.has_parent_path() || p.parent_path() == p) {
      return std::nullopt;
    }
    p = p.parent_path(); // a spool not made yet: the file system it will be made on
  }
}

Dir Dir::open(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    throw_errno("cannot open directory", path);
  }
  return Dir(std::move(fd), path);
}

std::string Dir::path_of(std::string_view name) const {
  return name.empty() ? m_path : (std::filesystem::path(m_path) / std::string(name)).string();
}

Dir Dir::try_subdir(const std::string& name) const {
  Fd f(::openat(fd(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  return f ? Dir(std::move(f), path_of(name)) : Dir();
}

Dir Dir::subdir(const std::string& name) const {
  Dir d = try_subdir(name);
  if (!d) {
    throw_errno("cannot open directory", path_of(name));
  }
  return d;
}

bool Dir::make_subdir(const std::string& name, mode_t mode) const {
  if (::mkdirat(fd(), name.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      return false;
    }
    throw_errno("cannot create directory", path_of(name));
  }
  // mkdir's mode is filtered by the umask: set the bits asked for exactly.
  if (::fchmodat(fd(), name.c_str(), mode, 0) != 0) {
    throw_errno("cannot set permissions of", path_of(name));
  }
  return true;
}

Fd Dir::open_regular(const std::string& name, int flags, struct stat* out) const {
  // O_NONBLOCK: opening a FIFO must not hang (it is rejected below); on a regular file
  // the flag changes nothing, so it stays set.
  Fd f(::openat(fd(), name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!f) {
    if (errno == ENOENT) {
      return f;
    }
    if (errno == ELOOP) {
      fail(fmt::format("refusing to open '{}': it is a symbolic link", path_of(name)));
    }
    throw_errno("cannot open", path_of(name));
  }
  const struct stat st = stat_of(f.get(), path_of(name));
  if (!S_ISREG(st.st_mode)) {
    fail(fmt::format("refusing to open '{}': not a regular file", path_of(name)));
  }
  if (out != nullptr) {
    *out = st;
  }
  return f;
}

Fd Dir::try_open(const std::string& name, int flags, mode_t mode) const {
  return Fd(::openat(fd(), name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, mode));
}

std::optional<std::string> Dir::read_file(const std::string& name) const {
  struct stat st {};
  Fd f = open_regular(name, O_RDONLY, &st);
  if (!f) {
    return std::nullopt;
  }
  return read_regular(f.get(), static_cast<std::size_t>(st.st_size), path_of(name));
}

Fd Dir::create(const std::string& name, std::string_view data, bool sync, mode_t mode, bool replace_stale) const {
  constexpr int flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
  Fd f(::openat(fd(), name.c_str(), flags, mode));
  if (!f && errno == EEXIST && replace_stale) {
    ::unlinkat(fd(), name.c_str(), 0);
    f = Fd(::openat(fd(), name.c_str(), flags, mode));
  }
  if (!f) {
    throw_errno("cannot create", path_of(name));
  }
  try {
    // open(2) filters the mode through the umask; a shared spool needs its group bits.
    if ((mode & current_umask()) != 0 && ::fchmod(f.get(), mode) != 0) {
      throw_errno("cannot set permissions of", path_of(name));
    }
    write_all(f.get(), data, path_of(name));
    if (sync) {
      sync_data(f.get(), path_of(name));
    }
  } catch (...) {
    remove_quietly(name);
    throw;
  }
  return f;
}

Fd Dir::create_unnamed(mode_t mode) const {
  return Fd(::openat(fd(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode));
}

void Dir::append(const std::string& name, std::string_view data, mode_t mode) const {
  Fd f = try_open(name, O_WRONLY | O_APPEND);
  if (!f && errno == ENOENT) {
    try {
      (void)create(name, "", false, mode); // with its mode; then opened for appending
    } catch (const Error&) {
      // created by someone else meanwhile
    }
    f = try_open(name, O_WRONLY | O_APPEND);
  }
  if (!f) {
    throw_errno("cannot open", path_of(name));
  }
  write_all(f.get(), data, path_of(name));
}

void Dir::write_atomic(const std::string& name, std::string_view data, mode_t mode) const {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = fmt::format(".{}.{}.{}.tmp", name, ::getpid(), counter++);
  Fd f = create(tmp, data, true, mode);
  try {
    close(f, path_of(name));
    move_over(tmp, *this, name);
  } catch (...) {
    remove_quietly(tmp);
    throw;
  }
  sync(); // the rename is not durable until its directory is
}

bool Dir::move_noreplace(const std::string& from, const Dir& to_dir, const std::string& to, bool missing_ok) const {
  if (::renameat2(fd(), from.c_str(), to_dir.fd(), to.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno == EEXIST || (errno == ENOENT && missing_ok)) {
    return false;
  }
  throw_errno("cannot rename", path_of(from));
}

bool Dir::exchange(const std::string& a, const Dir& b_dir, const std::string& b) const {
  if (::renameat2(fd(), a.c_str(), b_dir.fd(), b.c_str(), RENAME_EXCHANGE) == 0) {
    return true;
  }
  if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
    return false; // this file system cannot
  }
  throw_errno("cannot replace", b_dir.path_of(b));
}

void Dir::move_over(const std::string& from, const Dir& to_dir, const std::string& to) const {
  if (::renameat(fd(), from.c_str(), to_dir.fd(), to.c_str()) != 0) {
    throw_errno("cannot replace", to_dir.path_of(to));
  }
}

bool Dir::remove(const std::string& name) const {
  if (::unlinkat(fd(), name.c_str(), 0) == 0) {
    return true;
  }
  if (errno == ENOENT) {
    return false;
  }
  throw_errno("cannot remove", path_of(name));
}

void Dir::remove_quietly(const std::string& name) const {
  ::unlinkat(fd(), name.c_str(), 0);
}

bool Dir::touch(const std::string& name) const {
  return ::utimensat(fd(), name.c_str(), nullptr, AT_SYMLINK_NOFOLLOW) == 0;
}

std::optional<struct stat> Dir::stat(const std::string& name) const {
  struct stat st {};
  if (::fstatat(fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    return st;
  }
  if (errno == ENOENT) {
    return std::nullopt;
  }
  throw_errno("cannot stat", path_of(name));
}

void Dir::sync() const {
  if (::fsync(fd()) != 0) {
    throw_errno("cannot sync", m_path);
  }
}

void Dir::sync_file_system() const {
  if (::syncfs(fd()) != 0) {
    throw_errno("cannot sync the file system of", m_path);
  }
}

namespace {

// Every entry of `dir` but "." and "..", with large getdents64 reads; stops when `fn`
// returns false.
template <class Fn> void list_directory(const Dir& dir, const Fn& fn) {
  Fd f(::openat(dir.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!f) {
    throw_errno("cannot open directory", dir.path());
  }
  // Large reads for huge directories, but not zero-filled: only the pages the kernel
  // writes are touched, so a small directory costs a few page faults, not 256.
  constexpr std::size_t k_size = 1 << 20;
  const auto buf = std::make_unique_for_overwrite<char[]>(k_size);
  for (;;) {
    const long n = ::syscall(SYS_getdents64, f.get(), buf.get(), k_size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno("cannot read directory", dir.path());
    }
    if (n == 0) {
      return;
    }
    for (long off = 0; off < n;) {
      // getdents64 records have the layout of glibc's dirent64.
      auto* d = reinterpret_cast<struct dirent64*>(buf.get() + off);
      off += d->d_reclen;
      const std::string_view name(d->d_name);
      if (name == "." || name == "..") {
        continue;
      }
      if (!fn(name, *d)) {
        return;
      }
    }
  }
}

} // namespace

void Dir::for_each(const std::function<bool(std::string_view, unsigned char)>& fn) const {
  list_directory(*this, [&](std::string_view name, const struct dirent64& d) { return fn(name, d.d_type); });
}

void Dir::for_each_inode(const std::function<bool(std::string_view, ino_t)>& fn) const {
  list_directory(*this, [&](std::string_view name, const struct dirent64& d) { return fn(name, d.d_ino); });
}

// --- processes -----------------------------------------------------------------------

bool is_regular_file(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

bool is_terminal(int fd) {
  return ::isatty(fd) == 1;
}

pid_t own_pid() {
  return ::getpid();
}

bool is_root() {
  return ::geteuid() == 0;
}

pid_t fork_process(std::string_view what) {
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw_errno("cannot start a process for", what);
  }
  return pid;
}

void exit_now(int code) {
  ::_exit(code);
}

std::optional<Micros> process_started(pid_t pid) {
  static const std::int64_t boot_seconds = [] {
    const Fd f = open_path("/proc/stat", O_RDONLY);
    const std::string text = f ? read_all(f.get(), "/proc/stat") : std::string();
    const auto at = text.find("\nbtime ");
    return at == std::string::npos ? std::int64_t{-1} : std::strtoll(text.c_str() + at + 7, nullptr, 10);
  }();
  const Fd f = open_path(fmt::format("/proc/{}/stat", pid), O_RDONLY);
  if (!f || boot_seconds < 0) {
    return std::nullopt;
  }
  std::string text;
  try {
    text = read_all(f.get(), "/proc/PID/stat");
  } catch (const Error&) {
    return std::nullopt;
  }
  // "pid (comm) state ppid ... starttime" : starttime is field 22, the 20th after ')'.
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) {
    return std::nullopt;
  }
  const char* p = text.c_str() + paren + 1;
  for (int field = 3; field < 22 && *p; ++field) {
    while (*p == ' ') {
      ++p;
    }
    while (*p && *p != ' ') {
      ++p;
    }
  }
  const unsigned long long ticks = std::strtoull(p, nullptr, 10);
  static const long hz = ::sysconf(_SC_CLK_TCK);
  return boot_seconds * 1'000'000 + static_cast<Micros>(ticks * 1'000'000ULL / static_cast<unsigned long long>(hz));
}

bool process_alive(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

Sent send_signal(pid_t pid, int sig) {
  if (::kill(pid, sig) == 0) {
    return Sent::delivered;
  }
  return errno == EPERM ? Sent::denied : Sent::gone;
}

Sent signal_group(pid_t pgid, int sig) {
  return pgid > 0 ? send_signal(-pgid, sig) : Sent::gone;
}

pid_t process_group(pid_t pid) {
  const pid_t g = ::getpgid(pid);
  return g < 0 ? 0 : g;
}

pid_t own_process_group() {
  return ::getpgrp();
}

pid_t parent_pid() {
  return ::getppid();
}

void die_with_parent(int sig) {
  ::prctl(PR_SET_PDEATHSIG, sig);
}

void new_session() {
  ::setsid();
}

void close_inherited_fds() {
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
}

void redirect_stdio(int in, int out, int err) {
  ::dup2(in, STDIN_FILENO);
  ::dup2(out, STDOUT_FILENO);
  ::dup2(err, STDERR_FILENO);
}

std::pair<Fd, Fd> make_pipe(std::string_view what) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    throw_errno("cannot create a pipe for", what);
  }
  return {Fd(p[0]), Fd(p[1])};
}

void Child::signal_group(int sig) const {
  sys::signal_group(m_pid, sig);
}

std::optional<int> Child::try_reap() {
  if (m_pid <= 0) {
    return std::nullopt;
  }
  int status = 0;
  pid_t r = 0;
  while ((r = ::waitpid(m_pid, &status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r <= 0) {
    return std::nullopt; // still running (or, r < 0, not our child: nothing to reap)
  }
  m_pid = 0;
  return status;
}

int Child::wait() {
  const int status = wait_for(m_pid);
  m_pid = 0;
  return status;
}

std::optional<Reaped> reap_any() {
  int status = 0;
  const pid_t pid = ::waitpid(-1, &status, WNOHANG);
  if (pid <= 0) {
    return std::nullopt;
  }
  return Reaped{pid, status};
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return 0;
    }
  }
  return status;
}

namespace {

// What the vfork child shares with its parent: the arguments, and a place to report a
// failure before exec.
struct ChildArgs {
  const SpawnArgs* a = nullptr;
  int null_fd = -1;
  sigset_t mask{};
  volatile int child_errno = 0;
  volatile int failed_chdir = 0;
};

// In the vfork child: system calls only, then exec or _exit.
[[noreturn]] void exec_child(ChildArgs& c) {
  const SpawnArgs& a = *c.a;
  if (a.own_group) {
    ::setpgid(0, 0);
    // Every signal is blocked since before vfork. One sent to the parent's group before
    // the setpgid above (a Ctrl-C that raced the start) is pending here: setting its
    // action to SIG_IGN discards it, then the default is restored. Our dispositions are
    // a copy (vfork shares memory, not the signal table), so the parent's stay as they are.
    sigset_t pending;
    if (::sigpending(&pending) == 0) {
      for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP && ::sigismember(&pending, sig) == 1) {
          struct sigaction sa {};
          sa.sa_handler = SIG_IGN;
          ::sigaction(sig, &sa, nullptr);
          sa.sa_handler = SIG_DFL;
          ::sigaction(sig, &sa, nullptr);
        }
      }
    }
  }
  ::sigprocmask(SIG_SETMASK, &c.mask, nullptr);
  ::dup2(c.null_fd, STDIN_FILENO);
  if (a.out_fd >= 0) {
    ::dup2(a.out_fd, STDOUT_FILENO);
    ::dup2(a.out_fd, STDERR_FILENO);
  }
  for (std::size_t i = 0; i < a.nkeep; ++i) {
    ::fcntl(a.keep[i], F_SETFD, 0); // inherited across exec (our fd table is a copy)
  }
  if (a.cwd && ::chdir(a.cwd) != 0) {
    c.child_errno = errno;
    c.failed_chdir = 1;
    ::_exit(127);
  }
  ::execve(a.path, a.argv, a.envp);
  c.child_errno = errno;
  ::_exit(127);
}

} // namespace

Spawned spawn(const SpawnArgs& a) {
  ChildArgs c;
  c.a = &a;
  c.null_fd = dev_null();
  sigemptyset(&c.mask);
  // vfork rather than posix_spawn: glibc's posix_spawn child makes two sigaction calls
  // per signal before exec; a worker installs no handlers, so none are needed. The child
  // starts with every signal blocked (see exec_child).
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::vfork();
  if (pid == 0) {
    exec_child(c);
  }
  const int vfork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    throw_errno("cannot start", a.path, vfork_errno);
  }
  Spawned r{pid, c.child_errno, c.failed_chdir != 0};
  if (r.error != 0) {
    wait_for(pid);
  }
  return r;
}

void reset_ignored_signals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa {};
    if (sig == SIGKILL || sig == SIGSTOP || ::sigaction(sig, nullptr, &sa) != 0) {
      continue; // also skips glibc's internal signals, which refuse sigaction
    }
    if (sa.sa_handler == SIG_IGN) {
      sa.sa_handler = SIG_DFL;
      ::sigaction(sig, &sa, nullptr);
    }
  }
}

std::filesystem::path self_exe() {
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    throw_errno("cannot read", "/proc/self/exe");
  }
  return std::string(exe, static_cast<std::size_t>(n));
}

bool is_executable(const std::filesystem::path& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

void exec(const std::filesystem::path& path, char** argv) {
  ::execv(path.c_str(), argv);
  throw_errno("cannot run", path.string());
}

std::pair<int, std::string> run(const std::string& exe, const std::vector<std::string>& args) {
  auto [rd, wr] = make_pipe(exe);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<std::string> store{exe};
  store.insert(store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : store) {
    argv.push_back(s.data());
  }
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  wr.reset();
  if (rc != 0) {
    fail(fmt::format("cannot run '{}': {}", exe, std::strerror(rc)));
  }
  std::string out = read_all(rd.get(), exe);
  const int status = wait_for(pid);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 1, std::move(out)};
}

std::vector<pid_t> pids_locking(dev_t dev, ino_t ino) {
  std::vector<pid_t> out;
  Dir proc;
  try {
    proc = Dir::open("/proc");
  } catch (const Error&) {
    return out;
  }
  std::vector<std::string> pids;
  proc.for_each([&](std::string_view name, unsigned char) {
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string_view::npos) {
      pids.emplace_back(name);
    }
    return true;
  });
  for (const std::string& pid : pids) {
    const Dir fds = proc.try_subdir(pid).try_subdir("fd");
    if (!fds) {
      continue; // gone, or not ours to look at
    }
    bool holds = false;
    try {
      fds.for_each([&](std::string_view name, unsigned char) {
        struct stat st {};
        // fstatat follows the magic link to the open file itself; fdinfo lists the locks
        // taken through that descriptor.
        const std::string fd(name);
        if (::fstatat(fds.fd(), fd.c_str(), &st, 0) == 0 && st.st_dev == dev && st.st_ino == ino) {
          const Dir info = proc.try_subdir(pid).try_subdir("fdinfo");
          const auto text = info ? info.read_file(fd) : std::nullopt;
          holds = text && text->find("FLOCK") != std::string::npos;
        }
        return !holds;
      });
    } catch (const Error&) {
      continue; // it exited while we looked
    }
    if (holds) {
      out.push_back(static_cast<pid_t>(std::atol(pid.c_str())));
    }
  }
  return out;
}

void* map_memory(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    throw std::bad_alloc();
  }
  if (bytes >= (2 << 20)) {
    (void)::madvise(p, bytes, MADV_HUGEPAGE); // advice: without it, small pages
  }
  return p;
}

void unmap_memory(void* p, std::size_t bytes) {
  ::munmap(p, bytes);
}

void release_free_memory() {
  ::malloc_trim(0);
}

void sleep_for(Micros us) {
  ::usleep(static_cast<useconds_t>(us));
}

namespace {

struct RandomPool {
  std::uint64_t values[64];
  std::size_t left = 0;
};
thread_local RandomPool t_random;

} // namespace

std::uint64_t random_u64() {
  static const int forget_on_fork = ::pthread_atfork(nullptr, nullptr, [] { t_random.left = 0; });
  (void)forget_on_fork;
  RandomPool& p = t_random;
  if (p.left == 0) {
    if (::getrandom(p.values, sizeof p.values, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof p.values)) {
      return static_cast<std::uint64_t>(now_micros()) * 6364136223846793005ULL ^ static_cast<std::uint64_t>(::getpid());
    }
    p.left = std::size(p.values);
  }
  return p.values[--p.left];
}

std::size_t arg_max() {
  const long v = ::sysconf(_SC_ARG_MAX);
  return v > 0 ? static_cast<std::size_t>(v) : 2 * 1024 * 1024;
}

// --- signals -------------------------------------------------------------------------

sigset_t signal_set(std::initializer_list<int> sigs) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : sigs) {
    sigaddset(&set, s);
  }
  return set;
}

void block_signals(const sigset_t& set, sigset_t* old) {
  ::pthread_sigmask(SIG_BLOCK, &set, old);
}

void set_signal_mask(const sigset_t& set) {
  ::pthread_sigmask(SIG_SETMASK, &set, nullptr);
}

namespace {
const sigset_t k_interrupts = signal_set({SIGINT, SIGTERM, SIGHUP});
} // namespace

HeldInterrupts::HeldInterrupts() : m_old() {
  block_signals(k_interrupts, &m_old);
}

HeldInterrupts::~HeldInterrupts() {
  set_signal_mask(m_old);
}

bool interrupt_pending() {
  sigset_t pending;
  ::sigemptyset(&pending);
  ::sigpending(&pending);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    if (::sigismember(&pending, sig) == 1) {
      return true;
    }
  }
  return false;
}

int wait_signal(const sigset_t& set, Micros timeout) {
  timespec ts{static_cast<time_t>(timeout / 1'000'000), static_cast<long>(timeout % 1'000'000) * 1000};
  siginfo_t si{};
  const int sig = ::sigtimedwait(&set, &si, &ts);
  return sig < 0 ? 0 : sig;
}

SignalFd::SignalFd(std::initializer_list<int> sigs) {
  const sigset_t set = signal_set(sigs);
  block_signals(set);
  m_fd = Fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!m_fd) {
    throw_errno("cannot create", "signalfd");
  }
}

std::optional<int> SignalFd::next() {
  if (m_next == m_have) {
    if (m_emptied) {
      m_emptied = false;
      return std::nullopt;
    }
    signalfd_siginfo si[sizeof m_buf / sizeof m_buf[0]];
    const ssize_t n = ::read(m_fd.get(), si, sizeof si);
    m_have = n > 0 ? static_cast<std::size_t>(n) / sizeof si[0] : 0;
    m_next = 0;
    for (std::size_t i = 0; i < m_have; ++i) {
      m_buf[i] = static_cast<int>(si[i].ssi_signo);
    }
    m_emptied = m_have < std::size(m_buf);
    if (m_have == 0) {
      m_emptied = false;
      return std::nullopt;
    }
  }
  return m_buf[m_next++];
}

// --- events --------------------------------------------------------------------------

Inotify Inotify::try_open() {
  return Inotify(Fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)));
}

int Inotify::add(const std::string& path, std::uint32_t mask) {
  const int wd = ::inotify_add_watch(m_fd.get(), path.c_str(), mask);
  if (wd < 0) {
    if (errno == ENOSPC) {
      fail(fmt::format("cannot watch {}: the per-user limit of inotify watches is reached; raise "
                       "fs.inotify.max_user_watches (sysctl), or set QUEUECTL_WATCH=poll",
                       path));
    }
    throw_errno("cannot watch", path);
  }
  return wd;
}

int Inotify::try_add_file(int fd, std::uint32_t mask) {
  const std::string self = fmt::format("/proc/self/fd/{}", fd);
  return ::inotify_add_watch(m_fd.get(), self.c_str(), mask);
}

void Inotify::drain(const std::function<void(int, std::uint32_t, std::string_view)>& fn) {
  alignas(struct inotify_event) char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(m_fd.get(), buf, sizeof buf);
    if (n <= 0) {
      return; // EAGAIN: drained
    }
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const struct inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
      fn(ev->wd, ev->mask, ev->len > 0 ? std::string_view(ev->name) : std::string_view());
    }
    // Room was left for another event: the queue was empty when read (poll tells of more).
    if (static_cast<std::size_t>(n) + sizeof(struct inotify_event) + NAME_MAX + 1 <= sizeof buf) {
      return;
    }
  }
}

Ticker::Ticker(Micros period) : m_fd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
  if (!m_fd) {
    throw_errno("cannot create", "timerfd");
  }
  itimerspec spec{};
  spec.it_interval.tv_sec = static_cast<time_t>(period / 1'000'000);
  spec.it_interval.tv_nsec = static_cast<long>(period % 1'000'000) * 1000;
  spec.it_value = spec.it_interval;
  if (::timerfd_settime(m_fd.get(), 0, &spec, nullptr) != 0) {
    throw_errno("cannot arm", "timerfd");
  }
}

void Ticker::clear() {
  std::uint64_t n = 0;
  (void)!::read(m_fd.get(), &n, sizeof n); // EAGAIN: it has not fired since
}

Fd duplicate(int fd, std::string_view what) {
  Fd d(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!d) {
    throw_errno("cannot duplicate the descriptor of", what);
  }
  return d;
}

EventFd::EventFd() : m_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!m_fd) {
    throw_errno("cannot create", "eventfd");
  }
}

void EventFd::ring() {
  const std::uint64_t one = 1;
  // A full counter (2^64 - 2 rings unheard) still wakes the poller: nothing to report.
  (void)!::write(m_fd.get(), &one, sizeof one);
}

void EventFd::clear() {
  std::uint64_t n = 0;
  (void)!::read(m_fd.get(), &n, sizeof n); // EAGAIN: it was not rung
}

int poll(pollfd* fds, std::size_t n, int timeout_ms) {
  const int r = ::poll(fds, n, timeout_ms);
  if (r < 0) {
    if (errno == EINTR) {
      return 0;
    }
    throw_errno("cannot poll", "descriptors");
  }
  return r;
}

// --- sockets -------------------------------------------------------------------------

namespace {

// What systemd told this process, read once and then removed from the environment, so
// that no worker or job inherits it (a supervisor run as a job would talk to our unit).
struct SystemdEnvironment {
  std::string socket; // $NOTIFY_SOCKET, "" when none
  Micros watchdog = 0;
};

const SystemdEnvironment& systemd_environment() {
  static const SystemdEnvironment env = [] {
    SystemdEnvironment e;
    if (const char* path = std::getenv("NOTIFY_SOCKET"); path && (path[0] == '/' || path[0] == '@')) {
      e.socket = path;
    }
    const char* usec = std::getenv("WATCHDOG_USEC");
    const char* pid = std::getenv("WATCHDOG_PID");
    if (usec && (!pid || std::atol(pid) == ::getpid())) {
      e.watchdog = std::max<Micros>(0, std::atoll(usec));
    }
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) {
      ::unsetenv(name);
    }
    return e;
  }();
  return env;
}

} // namespace

bool systemd_listens() {
  return !systemd_environment().socket.empty();
}

Micros watchdog_period() {
  return systemd_environment().watchdog;
}

void notify_systemd(const char* state) {
  const std::string& socket = systemd_environment().socket;
  if (socket.empty()) {
    return;
  }
  const char* path = socket.c_str();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) {
    return;
  }
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') {
    addr.sun_path[0] = '\0';
  }
  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return;
  }
  const auto alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  // Advice to the service manager: a lost datagram is no error of ours.
  (void)!::sendto(fd.get(), state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), alen);
}

ListenAddress resolve_listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0) {
    fail(fmt::format("cannot listen on {}:{}: the address does not resolve ({})", host, port, ::gai_strerror(rc)));
  }
  ListenAddress a;
  for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
      a.loopback = a.loopback && (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (ai->ai_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
      a.loopback = a.loopback && IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    } else {
      a.loopback = false;
    }
  }
  std::memcpy(&a.addr, res->ai_addr, res->ai_addrlen);
  a.len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return a;
}

void reuse_address(int sock) {
  int yes = 1;
  ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

void probe_port(const ListenAddress& a, const std::string& host, int port) {
  Fd sock(::socket(a.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) {
    throw_errno("cannot create a socket for", host);
  }
  reuse_address(sock.get());
  if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&a.addr), a.len) != 0) {
    const int err = errno;
    fail(fmt::format("cannot listen on {}:{}: {}", host, port,
                     err == EADDRINUSE
                         ? "the port is in use (is another server, perhaps a queuectl serve, running there?)"
                         : std::strerror(err)));
  }
}

} // namespace queuectl::sys
