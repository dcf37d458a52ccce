#include "queuectl/logs.hpp"

#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

namespace queuectl {

namespace {

// Copies what is new in `log` to `out`.
void copy_new(int log, int out) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(log, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      throw_errno("cannot read", "job log");
    }
    if (n == 0) {
      return;
    }
    sys::write_all(out, std::string_view(buf, static_cast<std::size_t>(n)), "standard output");
  }
}

bool finished(std::optional<JobState> s) {
  return !s || *s == JobState::completed || *s == JobState::dead;
}

} // namespace

void print_log(const Spool& spool, const std::string& id, bool follow, int out) {
  if (!valid_id(id)) {
    bad_usage(fmt::format("invalid job id '{}'", id));
  }
  Fd log = spool.open_log(id);
  std::optional<JobState> state = spool.find(id);
  if (!state && !log) {
    fail(fmt::format("no such job '{}'", id));
  }
  if (log) {
    copy_new(log.get(), out);
  }
  if (!follow) {
    return;
  }
  Fd ino(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!ino) {
    throw_errno("cannot start inotify for", spool.root().string());
  }
  // New logs appear in processing/; finished jobs arrive in done/ or dead/.
  for (JobState s : {JobState::processing, JobState::completed, JobState::dead}) {
    ::inotify_add_watch(ino.get(), spool.path_of(s, "").c_str(), IN_CREATE | IN_MOVED_TO);
  }
  bool watching_log = false;
  for (;;) {
    if (!log) {
      log = spool.open_log(id);
    }
    if (log && !watching_log) {
      // Watch the log's inode: renames between directories do not disturb it.
      const std::string self = fmt::format("/proc/self/fd/{}", log.get());
      watching_log = ::inotify_add_watch(ino.get(), self.c_str(), IN_MODIFY) >= 0;
    }
    if (log) {
      copy_new(log.get(), out);
    }
    state = spool.find(id);
    if (finished(state)) {
      if (!log) {
        log = spool.open_log(id);
      }
      if (log) {
        copy_new(log.get(), out); // everything written before the job reached its end
      }
      return;
    }
    pollfd pfd{ino.get(), POLLIN, 0};
    // inotify wakes us; the timeout is only a backstop should an event be missed.
    if (::poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
      throw_errno("cannot poll", "job log");
    }
    char buf[4096];
    while (::read(ino.get(), buf, sizeof buf) > 0) {
    }
  }
}

} // namespace queuectl
