#include "queuectl/logs.hpp"

#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"
#include "queuectl/watch.hpp"

#include <fmt/format.h>

#include <sys/inotify.h>

namespace queuectl {

namespace {

// Copies what is new in `log` to `out`.
void copy_new(int log, int out) {
  sys::write_all(out, sys::read_all(log, "the job's log"), "standard output");
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
    throw NotFound(fmt::format("no such job '{}'", id));
  }
  if (log) {
    copy_new(log.get(), out);
  }
  if (!follow) {
    return;
  }
  const auto watch = Watch::open();
  // New logs appear in processing/; finished jobs arrive in done/ or dead/.
  for (JobState s : {JobState::processing, JobState::completed, JobState::dead}) {
    watch->add(spool.path_of(s, ""), IN_CREATE | IN_MOVED_TO);
  }
  bool watching_log = false;
  for (;;) {
    if (!log) {
      log = spool.open_log(id);
    }
    if (log && !watching_log) {
      // Watch the log's inode: renames between directories do not disturb it.
      watching_log = watch->try_add_file(log.get(), IN_MODIFY) >= 0;
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
    pollfd pfd{watch->fd(), POLLIN, 0};
    // inotify wakes us; the timeout is only a backstop should an event be missed.
    sys::poll(&pfd, 1, 1000);
    watch->drain([](int, std::uint32_t, std::string_view) {});
  }
}

} // namespace queuectl
