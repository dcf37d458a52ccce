// sys: every system call queuectl makes, as throwing wrappers and one small type per
// kernel resource. The one exception is the vfork child in process.cpp, which may only
// make raw calls between vfork and exec.
//
// Every descriptor opened here has O_CLOEXEC. Failures throw Error(Exit::failure) naming
// the call's subject ("cannot rename '/spool/pending/x.json': ..."); the path in a message
// is built only when a call fails. Outcomes that are expected (a missing file, a lost
// rename race, a lock someone else holds) are return values, not exceptions.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/fd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace queuectl::sys {

// --- descriptors ---------------------------------------------------------------------

// Writes all of `data`, retrying EINTR and short writes. `what` names the file in errors.
void write_all(int fd, std::string_view data, std::string_view what);
// pwrite(2) of all of `data` at `offset`.
void write_all_at(int fd, std::string_view data, off_t offset, std::string_view what);
// Reads until EOF.
std::string read_all(int fd, std::string_view what);
// One read(2) of at most `max` bytes (retrying EINTR): what a pipe holds now, or ""
// at its end.
std::string read_some(int fd, std::size_t max, std::string_view what);
// Reads what is there at `offset`, at most `max` bytes.
std::string read_at(int fd, std::size_t max, off_t offset, std::string_view what);
// Reads a regular file of about `size` bytes (its fstat size) to its end, in one read(2)
// when the size holds: a regular file's short read is its end, so no second read is
// spent to see EOF. A file that grew since is still read whole.
std::string read_regular(int fd, std::size_t size, std::string_view what);
// fdatasync(2), ftruncate(2), fstat(2).
void sync_data(int fd, std::string_view what);
void truncate(int fd, off_t size, std::string_view what);
struct stat stat_of(int fd, std::string_view what);
// A file's modification time in microseconds since the epoch.
std::int64_t mtime_micros(const struct stat& st);
// Its status-change time (a write, a rename, a chmod...) in microseconds since the epoch.
std::int64_t ctime_micros(const struct stat& st);
// close(2) that reports the error a write may only show at close.
void close(Fd& fd, std::string_view what);

// flock(2) without blocking: true if taken, false if someone else holds it.
bool try_lock(int fd, bool exclusive, std::string_view what = "file");
// flock(2), blocking (retries EINTR).
void lock(int fd, bool exclusive, std::string_view what = "file");
void unlock(int fd);

// Opens a file by path (O_CLOEXEC added); an empty Fd with errno set when it cannot.
Fd open_path(const std::string& path, int flags, mode_t mode = 0);
// /dev/null, read and write.
int dev_null();

// --- directories ---------------------------------------------------------------------

// mkdir -p: the missing directories of `path` are created with mode 0700.
void make_directories(const std::filesystem::path& path);
// Whether anything exists at `path` (a path we may not look at counts as existing: the
// open that follows says why it fails).
bool path_exists(const std::filesystem::path& path);

// The file system type (statfs(2) f_type) of the nearest existing directory on `path`;
// nullopt when none can be looked at.
std::optional<long> fs_type(const std::filesystem::path& path);

// A directory: its descriptor, and its path for messages. Names are relative to it, and
// never followed through a symbolic link.
class Dir {
public:
  Dir() = default;
  Dir(Fd fd, std::string path) : m_fd(std::move(fd)), m_path(std::move(path)) {}

  // Opens a directory by path. Throws Error when it is missing or not a directory.
  static Dir open(const std::string& path);
  // Opens a subdirectory; an empty Dir (with errno set) when it cannot.
  Dir try_subdir(const std::string& name) const;
  Dir subdir(const std::string& name) const; // throws

  int fd() const { return m_fd.get(); }
  const std::string& path() const { return m_path; }
  explicit operator bool() const { return static_cast<bool>(m_fd); }
  // "<path>/<name>", for messages.
  std::string path_of(std::string_view name) const;

  // mkdir(2) with `mode` set exactly (not filtered by the umask). False if it existed.
  bool make_subdir(const std::string& name, mode_t mode) const;

  // Opens a regular file without following a symbolic link. An empty Fd when it does not
  // exist; throws when it is not a regular file or cannot be opened. `st` gets its fstat.
  Fd open_regular(const std::string& name, int flags = O_RDONLY, struct stat* st = nullptr) const;
  // openat(2) as it is (O_CLOEXEC | O_NOFOLLOW added): an empty Fd with errno set.
  Fd try_open(const std::string& name, int flags, mode_t mode = 0) const;
  // A whole regular file; nullopt when it does not exist.
  std::optional<std::string> read_file(const std::string& name) const;
  // Creates `name` with `data` and permission bits `mode` (not filtered by the umask).
  // O_EXCL: never replaces anything, except, with `replace_stale`, a file of that name (a
  // temporary left by a crashed process whose pid was ours). With `sync`, the data is
  // fdatasync'ed. Returns the open descriptor (O_RDWR).
  Fd create(const std::string& name, std::string_view data, bool sync, mode_t mode, bool replace_stale = false) const;
  // Durably creates or replaces `name`: readers see the old or the new content, never a
  // torn file (a dot-temp, synced, renamed over, the directory synced).
  void write_atomic(const std::string& name, std::string_view data, mode_t mode) const;
  // A new file without a name in this directory (O_TMPFILE), for reading and writing: it
  // is gone with its last descriptor. An empty Fd when the file system cannot.
  Fd create_unnamed(mode_t mode) const;
  // Appends `data` to `name` with one O_APPEND write (not synced), creating the file with
  // permission bits `mode` when it is missing. Throws Error.
  void append(const std::string& name, std::string_view data, mode_t mode) const;

  // renameat2(RENAME_NOREPLACE): false if `to` exists (or, with `missing_ok`, the source
  // does not). Throws on other errors.
  bool move_noreplace(const std::string& from, const Dir& to_dir, const std::string& to, bool missing_ok = false) const;
  // renameat2(RENAME_EXCHANGE). False when the file system does not support it.
  bool exchange(const std::string& a, const Dir& b_dir, const std::string& b) const;
  // rename(2), replacing `to`.
  void move_over(const std::string& from, const Dir& to_dir, const std::string& to) const;
  // unlink(2); false if it did not exist.
  bool remove(const std::string& name) const;
  // unlink(2), errors ignored: cleaning up after a failure that is being reported.
  void remove_quietly(const std::string& name) const;
  // Sets an entry's times to now (utimensat(2)); false when it cannot.
  bool touch(const std::string& name) const;
  // lstat(2); nullopt if missing.
  std::optional<struct stat> stat(const std::string& name) const;
  bool exists(const std::string& name) const { return stat(name).has_value(); }
  // fsync(2) of the directory: the renames and creations in it are durable.
  void sync() const;
  // syncfs(2): every dirty file of its file system (one call for a whole batch).
  void sync_file_system() const;
  // Calls `fn(name, d_type)` for each entry but "." and "..", with large getdents64
  // reads (fast on directories with millions of entries). Stops early if `fn` returns
  // false. Does not move this descriptor's offset.
  void for_each(const std::function<bool(std::string_view name, unsigned char type)>& fn) const;
  // The same, with each entry's inode number instead of its type.
  void for_each_inode(const std::function<bool(std::string_view name, ino_t ino)>& fn) const;

private:
  Fd m_fd;
  std::string m_path;
};

// A file held under flock(2): the lock goes with the last descriptor of the open file
// (ours, or a child's that inherited it), so a process that dies never leaves it held.
class LockFile {
public:
  LockFile() = default;
  LockFile(Fd fd, std::string what) : m_fd(std::move(fd)), m_what(std::move(what)) {}
  // Opens `name` in `dir` for reading and writing, creating it with `mode`.
  static LockFile open(const Dir& dir, const std::string& name, mode_t mode);
  // Opens an existing `name` read-only; an empty LockFile when it does not exist.
  static LockFile open_existing(const Dir& dir, const std::string& name);

  // Waits for the lock (retries EINTR).
  void lock(bool exclusive = true) const;
  // False when another open file holds it.
  bool try_lock(bool exclusive = true) const;
  void unlock() const;

  int fd() const { return m_fd.get(); }
  const std::string& what() const { return m_what; }
  explicit operator bool() const { return static_cast<bool>(m_fd); }
  // The descriptor, leaving this empty (to hand the lock on).
  Fd release() { return std::move(m_fd); }

private:
  Fd m_fd;
  std::string m_what; // the file's path, for messages
};

// --- processes -----------------------------------------------------------------------

pid_t own_pid();
// What descriptor `fd` is: a regular file (fstat), a terminal (isatty).
bool is_regular_file(int fd);
bool is_terminal(int fd);
// Whether this process runs as root (effective uid 0).
bool is_root();
// fork(2). Throws Error naming `what` when it cannot.
pid_t fork_process(std::string_view what);
// _exit(2): no destructors, no atexit handlers (a forked child's end).
[[noreturn]] void exit_now(int code);
// Whether a process exists (a zombie counts).
bool process_alive(pid_t pid);
// When process `pid` started, on the wall clock (from /proc: to the second, as the boot
// time is); nullopt when it is gone or cannot be read.
std::optional<Micros> process_started(pid_t pid);
enum class Sent { delivered, gone, denied };
// kill(2).
Sent send_signal(pid_t pid, int sig);
// kill(-pgid): the whole process group; a group that is gone is no error.
Sent signal_group(pid_t pgid, int sig);
// The process group of `pid` (0 when it is gone), and this process's.
pid_t process_group(pid_t pid);
pid_t own_process_group();
pid_t parent_pid();
// Asks the kernel to send `sig` to this process when its parent exits.
void die_with_parent(int sig);
// A new session without a controlling terminal (a daemon's).
void new_session();
// Marks every descriptor from 3 up close-on-exec: nothing inherited reaches a job.
void close_inherited_fds();
// dup2(2) of each onto standard input, output and error.
void redirect_stdio(int in, int out, int err);
// A pipe, both ends close-on-exec: {read end, write end}.
std::pair<Fd, Fd> make_pipe(std::string_view what);

struct Reaped {
  pid_t pid;
  int status; // as waitpid(2) gives it
};
// waitpid(-1, WNOHANG): a child that has exited, if any.
std::optional<Reaped> reap_any();
// waitpid(pid), blocking (retries EINTR): its status.
int wait_for(pid_t pid);

// A process to start with vfork + execve: everything prepared before vfork, since the
// child may only make system calls until it execs (it runs on our memory while we are
// suspended).
struct SpawnArgs {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr; // chdir there first
  int out_fd = -1;           // its standard output and error (stdin is /dev/null)
  const int* keep = nullptr; // descriptors it inherits (others are close-on-exec)
  std::size_t nkeep = 0;
  bool own_group = false; // its own process group (pgid = pid)
};
struct Spawned {
  pid_t pid = 0;
  int error = 0; // errno of the failed chdir or exec (then pid has been reaped)
  bool failed_chdir = false;
};
// A started process that leads its own process group: it signals the group and reaps
// the leader (only this object reaps it, so its pid cannot be reused while it is held).
class Child {
public:
  Child() = default;
  explicit Child(pid_t pid) : m_pid(pid) {}
  Child(Child&& o) noexcept : m_pid(std::exchange(o.m_pid, 0)) {}
  Child& operator=(Child&& o) noexcept {
    m_pid = std::exchange(o.m_pid, 0);
    return *this;
  }

  pid_t pid() const { return m_pid; }
  // Signals every process of its group (a group already gone is no error).
  void signal_group(int sig) const;
  // waitpid(WNOHANG): its wait status once it has exited (then this is empty).
  std::optional<int> try_reap();
  // Blocks until it exits: its wait status.
  int wait();

private:
  pid_t m_pid = 0;
};

// Starts the process with an empty signal mask and default dispositions (see
// reset_ignored_signals). With `own_group`, no signal sent to this process's group can
// reach it, however the two race: it starts with every signal blocked and drops those
// that arrived before it left the group. The caller must have no signal handlers that
// could run in the vfork child. Throws Error when vfork itself fails.
Spawned spawn(const SpawnArgs& a);

// Sets every signal this process ignores back to its default (SIG_IGN survives exec:
// `nohup` or a shell's `&` leave SIGHUP, SIGINT or SIGQUIT ignored), so that the
// processes it starts begin with default dispositions.
void reset_ignored_signals();

// This program's executable (/proc/self/exe).
std::filesystem::path self_exe();
// Whether `path` may be executed by this process.
bool is_executable(const std::filesystem::path& path);
// Replaces this process with `path`, arguments `argv`. Throws Error if it cannot.
[[noreturn]] void exec(const std::filesystem::path& path, char** argv);
// Runs `exe args...` with standard input from /dev/null: its exit status (1 when it did
// not exit) and standard output.
std::pair<int, std::string> run(const std::string& exe, const std::vector<std::string>& args);

// The processes holding a flock(2) on the file (st_dev, st_ino) through a descriptor of
// theirs, found through /proc/PID/fd and fdinfo (only processes this user may inspect).
std::vector<pid_t> pids_locking(dev_t dev, ino_t ino);

// Gives the allocator's free memory back to the kernel (malloc_trim): before a fork, so
// that children do not share what the parent no longer uses.
void release_free_memory();
// Anonymous memory straight from mmap(2) (huge pages asked for from 2 MiB up: a large
// table read at random misses the TLB less), and its return with munmap(2). Throws
// std::bad_alloc.
void* map_memory(std::size_t bytes);
void unmap_memory(void* p, std::size_t bytes);
// Sleeps (for bounded waits that no descriptor can announce).
void sleep_for(Micros us);
// A random number from the kernel, drawn 64 at a time (a bulk enqueue needs one per
// job); a forked child starts with an empty pool, so it never repeats its parent's. Before
// the kernel has entropy (early boot), the time and pid stand in.
std::uint64_t random_u64();
// ARG_MAX: what execve(2) takes in arguments and environment together.
std::size_t arg_max();

// --- signals -------------------------------------------------------------------------

sigset_t signal_set(std::initializer_list<int> sigs);
// pthread_sigmask(2) for this thread: block `set`, or set the mask to `set`; the old
// mask in `old` when given.
void block_signals(const sigset_t& set, sigset_t* old = nullptr);
void set_signal_mask(const sigset_t& set);
// Ctrl-C, SIGTERM and SIGHUP held back while a batch is written (enqueue -): the batch
// looks with interrupt_pending() and undoes its work; the signal is delivered, with its
// usual effect, when this ends.
class HeldInterrupts {
public:
  HeldInterrupts();
  HeldInterrupts(const HeldInterrupts&) = delete;
  HeldInterrupts& operator=(const HeldInterrupts&) = delete;
  ~HeldInterrupts();

private:
  sigset_t m_old;
};
// Whether SIGINT, SIGTERM or SIGHUP waits, held back (sigpending(2)).
bool interrupt_pending();
// sigtimedwait(2): a signal of `set` (blocked by the caller), or 0 after `timeout`.
int wait_signal(const sigset_t& set, Micros timeout);

// Signals read as data: the signals are blocked in the calling thread (and so in the
// threads it starts) and come through a descriptor that poll(2) can wait on.
class SignalFd {
public:
  explicit SignalFd(std::initializer_list<int> sigs);
  int fd() const { return m_fd.get(); }
  // The next pending signal, without blocking. Signals are read several at a time; once
  // a read has found the queue empty, the next call returns nullopt without asking the
  // kernel again (poll says when there are more).
  std::optional<int> next();

private:
  Fd m_fd;
  int m_buf[16] = {};
  std::size_t m_have = 0;
  std::size_t m_next = 0;
  bool m_emptied = false; // the last read took all that was queued
};

// --- events --------------------------------------------------------------------------

// An inotify instance: watches on directories (or open files, through /proc/self/fd),
// read without blocking. The wake-up source most code wants is queuectl::Watch.
class Inotify {
public:
  // An instance; an empty one, with errno set, when the kernel gives none (the per-user
  // instance limit, fs.inotify.max_user_instances, or no inotify at all).
  static Inotify try_open();
  explicit operator bool() const { return static_cast<bool>(m_fd); }
  int fd() const { return m_fd.get(); }
  // Adds a watch; throws when it cannot. Returns its descriptor.
  int add(const std::string& path, std::uint32_t mask);
  // Adds a watch on an open file (whichever directory holds it); -1 when it cannot.
  int try_add_file(int fd, std::uint32_t mask);
  // Calls `fn(wd, mask, name)` for every queued event (name empty for the watched
  // object itself); returns when the queue is empty.
  void drain(const std::function<void(int wd, std::uint32_t mask, std::string_view name)>& fn);

private:
  explicit Inotify(Fd fd) : m_fd(std::move(fd)) {}
  Fd m_fd;
};

// A timerfd that fires every `period` from now on, read without blocking.
class Ticker {
public:
  explicit Ticker(Micros period);
  int fd() const { return m_fd.get(); }
  void clear(); // reads the expirations, so that poll(2) waits for the next

private:
  Fd m_fd;
};

// fcntl(F_DUPFD_CLOEXEC): a second descriptor of the same open file. Throws.
Fd duplicate(int fd, std::string_view what);

// An eventfd: a doorbell one thread rings and another's poll(2) hears.
class EventFd {
public:
  EventFd();
  int fd() const { return m_fd.get(); }
  void ring();
  void clear();

private:
  Fd m_fd;
};

// poll(2), retrying nothing: EINTR returns 0 (a signal woke it; the caller looks again).
int poll(pollfd* fds, std::size_t n, int timeout_ms);

// --- sockets -------------------------------------------------------------------------

// Tells systemd (Type=notify) our state ("READY=1", "STOPPING=1"): one datagram to
// $NOTIFY_SOCKET, the whole sd_notify protocol. Does nothing outside systemd.
void notify_systemd(const char* state);
// $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID are read at the first call of one of
// these three, and then removed from the environment: what is started afterwards (the
// workers, their jobs) does not inherit them.
// Whether $NOTIFY_SOCKET names a service manager to tell.
bool systemd_listens();
// The watchdog period systemd asks for (WatchdogSec=: $WATCHDOG_USEC, for this process
// when $WATCHDOG_PID says so), or 0 when none.
Micros watchdog_period();

struct ListenAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  bool loopback = true; // every address the host names is loopback
};
// Resolves a listen address. Throws Error when the host does not resolve.
ListenAddress resolve_listen(const std::string& host, int port);
// Binds the address once, with SO_REUSEADDR and never SO_REUSEPORT (with which a second
// server would share the port), to see whether the port is free. Throws Error saying
// so when it is in use.
void probe_port(const ListenAddress& a, const std::string& host, int port);
// SO_REUSEADDR on a listening socket (a restart need not wait for TIME_WAIT).
void reuse_address(int sock);

} // namespace queuectl::sys
