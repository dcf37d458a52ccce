// sys: thin, throwing wrappers over the *at() system calls the spool is built on.
//
// Every descriptor opened here has O_CLOEXEC. Functions throw Error(Exit::failure) with
// the failing call and path in the message; "expected" outcomes (a missing file, a lost
// rename race) are return values, not exceptions.
#pragma once

#include "queuectl/fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace queuectl::sys {

// Writes all of `data`, retrying EINTR and short writes.
void write_all(int fd, std::string_view data, std::string_view what);
// Reads until EOF.
std::string read_all(int fd, std::string_view what);
// Reads a regular file of about `size` bytes (its fstat size) to its end, in one read(2)
// when the size holds: a regular file's short read is its end, so no second read is
// spent to see EOF. A file that grew since is still read whole.
std::string read_regular(int fd, std::size_t size, std::string_view what);

// Opens a directory (O_DIRECTORY | O_CLOEXEC). Throws if missing or not a directory.
Fd open_dir(const std::string& path);
Fd open_dir_at(int dir, const std::string& name, const std::string& display);

// Opens a regular file for reading without following symlinks. Returns an empty Fd if it
// does not exist; throws Error if it exists but is not a regular file or cannot be opened.
// The fstat it checks the type with is copied to `st` when given.
Fd open_regular_at(int dir, const std::string& name, const std::string& display, int flags = O_RDONLY,
                   struct stat* st = nullptr);

// A file's modification time in microseconds since the epoch.
std::int64_t mtime_micros(const struct stat& st);

// Reads a whole regular file; nullopt when it does not exist.
std::optional<std::string> read_file_at(int dir, const std::string& name, const std::string& display);

// Creates `name` in `dir` with `data` and permission bits `mode` (not filtered by the
// umask). O_EXCL: never replaces anything, except, with `replace_stale`, a file of that
// name (a temporary left by a crashed process whose pid was ours). When `sync`, the data
// is fdatasync'ed before returning. Returns the open descriptor (O_RDWR).
Fd create_file_at(int dir, const std::string& name, std::string_view data, bool sync,
                  const std::string& display, mode_t mode = 0600, bool replace_stale = false);

// Durably creates or replaces `name` in `dir`: readers see the old or the new content,
// never a torn file. Writes a dot-temp, fsyncs it, renames it over `name`, fsyncs `dir`.
void write_file_atomic(int dir, const std::string& name, std::string_view data,
                       const std::string& display, mode_t mode = 0600);

// rename(2) that never replaces: false if `to` exists. Throws on other errors.
// ENOENT on the source returns false too when `missing_ok`.
bool rename_noreplace(int from_dir, const std::string& from, int to_dir, const std::string& to,
                      const std::string& display, bool missing_ok = false);
// Plain rename(2) (replaces); false when the source is missing.
bool rename_at(int from_dir, const std::string& from, int to_dir, const std::string& to,
               const std::string& display);

void fsync_fd(int fd, const std::string& display);
// Flushes every dirty file of the file system holding `fd` (one call for a whole batch).
void syncfs_fd(int fd, const std::string& display);

// Removes a file; false if it did not exist.
bool unlink_at(int dir, const std::string& name, const std::string& display);

// lstat-like: nullopt if missing. Throws on other errors.
std::optional<struct stat> stat_at(int dir, const std::string& name, const std::string& display);
bool exists_at(int dir, const std::string& name, const std::string& display);

// flock(2) without blocking: true if taken, false if someone else holds it.
bool try_lock(int fd, bool exclusive);
// flock(2), blocking (retries EINTR).
void lock(int fd, bool exclusive);

// This program's executable (/proc/self/exe).
std::filesystem::path self_exe();
// Whether `path` may be executed by this process.
bool is_executable(const std::filesystem::path& path);
// Replaces this process with `path`, arguments `argv`. Throws Error if it cannot.
[[noreturn]] void exec(const std::filesystem::path& path, char** argv);

// The processes holding a flock(2) on the file (st_dev, st_ino) through a descriptor of
// theirs, found through /proc/PID/fd and fdinfo (only processes this user may inspect).
std::vector<pid_t> pids_locking(dev_t dev, ino_t ino);

// Calls `fn(name, d_type)` for each entry of `dir` except "." and "..", using large
// getdents64 reads (fast on directories with millions of entries). Does not move
// `dir`'s own offset. Stops early if `fn` returns false.
void for_each_entry(int dir, const std::string& display,
                    const std::function<bool(std::string_view name, unsigned char type)>& fn);

} // namespace queuectl::sys
