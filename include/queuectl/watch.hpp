// watch: the wake-up source. Events on directories and open files, in inotify's terms,
// from inotify or, where inotify cannot be had, from looking every 100 ms (SPEC section 9).
#pragma once

#include "queuectl/clock.hpp"

#include <sys/inotify.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace queuectl {

constexpr Micros k_poll_period = 100'000;
// What polling() says when QUEUECTL_WATCH asked for it.
constexpr std::string_view k_poll_asked = "QUEUECTL_WATCH=poll";

// What a poll watch reports, in inotify's terms:
// - an entry new to a directory (a new name, or a name on a new inode; in a directory of
//   at most 64 entries, also a name whose ctime moved: it left and came back): IN_MOVED_TO,
//   IN_CREATE or IN_CLOSE_WRITE, the first of them the mask asks for;
// - in a directory of at most 64 entries: a file written in place (IN_CLOSE_WRITE, if
//   asked for) and, watched for IN_DELETE or IN_MOVED_FROM, an entry gone (both, those
//   asked for: a look cannot tell which); the regular files of such a directory (one of
//   settings, such as the spool's root) are stat'ed at every look;
// - IN_CLOSE_NOWRITE asked for: an event without a name at every look (a close leaves
//   nothing to see; the caller looks again at what it waits for);
// - a file (try_add_file): IN_MODIFY when its size or mtime changed.
// It never overflows. A directory is listed only when its mtime moved, and once more at
// the next look (file times are coarse: a change in the same tick leaves the mtime as it
// was; on whole-second times, at every look for two seconds); one of over 4096 entries
// at most once per ten times what its last listing cost.
class Watch {
public:
  using Handler = std::function<void(int wd, std::uint32_t mask, std::string_view name)>;

  virtual ~Watch() = default;
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // QUEUECTL_WATCH chooses: "inotify" (also when unset; poll when the kernel gives no
  // inotify instance) or "poll". Throws Error on any other value.
  static std::unique_ptr<Watch> open();
  // A poll watch looking every `period`, whatever the environment says; `why` is what
  // polling() gives.
  static std::unique_ptr<Watch> open_poll(Micros period = k_poll_period, std::string why = "asked for");

  // Readable (poll(2)) when drain() may have events.
  virtual int fd() const = 0;
  // Watches a directory for the events of `mask`; throws when it cannot. Returns the
  // watch descriptor its events carry.
  virtual int add(const std::string& path, std::uint32_t mask) = 0;
  // Watches an open file (IN_MODIFY); -1 when it cannot.
  virtual int try_add_file(int fd, std::uint32_t mask) = 0;
  // Calls `fn(wd, mask, name)` for each event since the last drain (name empty for the
  // watched object itself).
  virtual void drain(const Handler& fn) = 0;

  // Why this watch polls ("QUEUECTL_WATCH=poll", or the kernel's refusal of inotify);
  // empty for inotify.
  const std::string& polling() const { return m_polling; }

protected:
  explicit Watch(std::string polling) : m_polling(std::move(polling)) {}

private:
  std::string m_polling;
};

} // namespace queuectl
