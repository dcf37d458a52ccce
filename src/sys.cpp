#include "queuectl/sys.hpp"

#include "queuectl/error.hpp"

#include <fmt/format.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace queuectl::sys {

void write_all(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno("cannot write", what);
    }
    data.remove_prefix(static_cast<size_t>(n));
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
    out.append(buf, static_cast<size_t>(n));
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

Fd open_dir(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    throw_errno("cannot open directory", path);
  }
  return fd;
}

Fd open_dir_at(int dir, const std::string& name, const std::string& display) {
  Fd fd(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    throw_errno("cannot open directory", display);
  }
  return fd;
}

Fd open_regular_at(int dir, const std::string& name, const std::string& display, int flags, struct stat* out) {
  // O_NONBLOCK: opening a FIFO must not hang (it is rejected below); on a regular file
  // the flag changes nothing, so it stays set.
  Fd fd(::openat(dir, name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT) {
      return fd;
    }
    if (errno == ELOOP) {
      fail(fmt::format("refusing to open '{}': it is a symbolic link", display));
    }
    throw_errno("cannot open", display);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw_errno("cannot stat", display);
  }
  if (!S_ISREG(st.st_mode)) {
    fail(fmt::format("refusing to open '{}': not a regular file", display));
  }
  if (out != nullptr) {
    *out = st;
  }
  return fd;
}

std::int64_t mtime_micros(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000 + st.st_mtim.tv_nsec / 1000;
}

std::optional<std::string> read_file_at(int dir, const std::string& name, const std::string& display) {
  struct stat st {};
  Fd fd = open_regular_at(dir, name, display, O_RDONLY, &st);
  if (!fd) {
    return std::nullopt;
  }
  return read_regular(fd.get(), static_cast<std::size_t>(st.st_size), display);
}

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

Fd create_file_at(int dir, const std::string& name, std::string_view data, bool sync,
                  const std::string& display, mode_t mode, bool replace_stale) {
  constexpr int flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
  Fd fd(::openat(dir, name.c_str(), flags, mode));
  if (!fd && errno == EEXIST && replace_stale) {
    ::unlinkat(dir, name.c_str(), 0);
    fd = Fd(::openat(dir, name.c_str(), flags, mode));
  }
  if (!fd) {
    throw_errno("cannot create", display);
  }
  try {
    // open(2) filters the mode through the umask; a shared spool needs its group bits.
    if ((mode & current_umask()) != 0 && ::fchmod(fd.get(), mode) != 0) {
      throw_errno("cannot set permissions of", display);
    }
    write_all(fd.get(), data, display);
    if (sync && ::fdatasync(fd.get()) != 0) {
      throw_errno("cannot sync", display);
    }
  } catch (...) {
    ::unlinkat(dir, name.c_str(), 0);
    throw;
  }
  return fd;
}

namespace {
std::string temp_name(const std::string& name) {
  static std::atomic<unsigned> counter{0};
  return fmt::format(".{}.{}.{}.tmp", name, ::getpid(), counter++);
}
} // namespace

void write_file_atomic(int dir, const std::string& name, std::string_view data,
                       const std::string& display, mode_t mode) {
  const std::string tmp = temp_name(name);
  Fd fd = create_file_at(dir, tmp, data, true, display, mode);
  if (::close(fd.release()) != 0) {
    const int err = errno;
    ::unlinkat(dir, tmp.c_str(), 0);
    throw_errno("cannot close", display, err);
  }
  if (::renameat(dir, tmp.c_str(), dir, name.c_str()) != 0) {
    const int err = errno;
    ::unlinkat(dir, tmp.c_str(), 0);
    throw_errno("cannot rename into place", display, err);
  }
  // The rename is not durable until its directory is.
  fsync_fd(dir, display);
}

bool rename_noreplace(int from_dir, const std::string& from, int to_dir, const std::string& to,
                      const std::string& display, bool missing_ok) {
  if (::renameat2(from_dir, from.c_str(), to_dir, to.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno == EEXIST) {
    return false;
  }
  if (errno == ENOENT && missing_ok) {
    return false;
  }
  throw_errno("cannot rename", display);
}

bool rename_at(int from_dir, const std::string& from, int to_dir, const std::string& to,
               const std::string& display) {
  if (::renameat(from_dir, from.c_str(), to_dir, to.c_str()) == 0) {
    return true;
  }
  if (errno == ENOENT) {
    return false;
  }
  throw_errno("cannot rename", display);
}

void fsync_fd(int fd, const std::string& display) {
  if (::fsync(fd) != 0) {
    throw_errno("cannot sync", display);
  }
}

void syncfs_fd(int fd, const std::string& display) {
  if (::syncfs(fd) != 0) {
    throw_errno("cannot sync file system of", display);
  }
}

bool unlink_at(int dir, const std::string& name, const std::string& display) {
  if (::unlinkat(dir, name.c_str(), 0) == 0) {
    return true;
  }
  if (errno == ENOENT) {
    return false;
  }
  throw_errno("cannot remove", display);
}

std::optional<struct stat> stat_at(int dir, const std::string& name, const std::string& display) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    return st;
  }
  if (errno == ENOENT) {
    return std::nullopt;
  }
  throw_errno("cannot stat", display);
}

bool exists_at(int dir, const std::string& name, const std::string& display) {
  return stat_at(dir, name, display).has_value();
}

bool try_lock(int fd, bool exclusive) {
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
    throw_errno("cannot lock", "file");
  }
}

void lock(int fd, bool exclusive) {
  while (::flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) {
      throw_errno("cannot lock", "file");
    }
  }
}

void for_each_entry(int dir, const std::string& display,
                    const std::function<bool(std::string_view, unsigned char)>& fn) {
  Fd fd(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    throw_errno("cannot open directory", display);
  }
  // Large reads for huge directories, but not zero-filled: only the pages the kernel
  // writes are touched, so a small directory costs a few page faults, not 256.
  constexpr std::size_t k_size = 1 << 20;
  const auto buf = std::make_unique_for_overwrite<char[]>(k_size);
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd.get(), buf.get(), k_size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno("cannot read directory", display);
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
      if (!fn(name, d->d_type)) {
        return;
      }
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

bool is_executable(const std::filesystem::path& path) { return ::access(path.c_str(), X_OK) == 0; }

void exec(const std::filesystem::path& path, char** argv) {
  ::execv(path.c_str(), argv);
  throw_errno("cannot run", path.string());
}

std::vector<pid_t> pids_locking(dev_t dev, ino_t ino) {
  std::vector<pid_t> out;
  Fd proc(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!proc) {
    return out;
  }
  std::vector<std::string> pids;
  for_each_entry(proc.get(), "/proc", [&](std::string_view name, unsigned char) {
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string_view::npos) {
      pids.emplace_back(name);
    }
    return true;
  });
  for (const std::string& pid : pids) {
    const std::string fd_dir = pid + "/fd";
    Fd fds(::openat(proc.get(), fd_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fds) {
      continue; // gone, or not ours to look at
    }
    bool holds = false;
    try {
      for_each_entry(fds.get(), fd_dir, [&](std::string_view name, unsigned char) {
        struct stat st {};
        // fstatat follows the magic link to the open file itself; fdinfo lists the locks
        // taken through that descriptor.
        const std::string fd(name);
        if (::fstatat(fds.get(), fd.c_str(), &st, 0) == 0 && st.st_dev == dev && st.st_ino == ino) {
          const auto info = read_file_at(proc.get(), pid + "/fdinfo/" + fd, "fdinfo");
          holds = info && info->find("FLOCK") != std::string::npos;
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

} // namespace queuectl::sys
