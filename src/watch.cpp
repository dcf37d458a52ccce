#include "queuectl/watch.hpp"

#include "queuectl/error.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <vector>

namespace queuectl {

namespace {

class InotifyWatch final : public Watch {
public:
  explicit InotifyWatch(sys::Inotify in) : Watch(""), m_in(std::move(in)) {}
  int fd() const override { return m_in.fd(); }
  int add(const std::string& path, std::uint32_t mask) override { return m_in.add(path, mask); }
  int try_add_file(int fd, std::uint32_t mask) override { return m_in.try_add_file(fd, mask); }
  void drain(const Handler& fn) override { m_in.drain(fn); }

private:
  sys::Inotify m_in;
};

// Directories of at most this many entries have each entry stat'ed when they change,
// so that a name that left and came back on the same inode between two looks is still
// news (its ctime moved); the regular files of those watched for removals are also
// stat'ed at every look, for writes in place.
constexpr std::size_t k_small_dir = 64;
// A directory of more entries than this is listed again only after ten times what its
// last listing cost (a million pending jobs take a few hundred ms to list).
constexpr std::size_t k_big_dir = 4096;
constexpr Micros k_list_spacing = 10;
// On a file system with whole-second times, a directory is listed at every look while
// its mtime is this recent: a change later in the same second leaves it as it was.
constexpr Micros k_coarse_window = 2'000'000;

// What a look at an entry sees.
struct Stamp {
  Micros mtime = 0;
  Micros ctime = 0;
  off_t size = 0;
  ino_t ino = 0;
  bool regular = false;
  bool operator==(const Stamp&) const = default;
};

Stamp stamp_of(const struct stat& st) {
  return Stamp{sys::mtime_micros(st), sys::ctime_micros(st), st.st_size, st.st_ino, S_ISREG(st.st_mode)};
}

// An entry of a directory as one number: a name that comes back on a new inode (a job
// rewritten, config.json replaced) is a new entry.
std::uint64_t entry_key(std::string_view name, ino_t ino) {
  return std::hash<std::string_view>{}(name)*0x9e3779b97f4a7c15ULL ^ static_cast<std::uint64_t>(ino);
}

// The first of `wanted` that `mask` asks for; 0 when none.
std::uint32_t first_of(std::uint32_t mask, std::initializer_list<std::uint32_t> wanted) {
  for (const std::uint32_t m : wanted) {
    if (mask & m) {
      return m;
    }
  }
  return 0;
}

class PollWatch final : public Watch {
public:
  PollWatch(Micros period, std::string why) : Watch(std::move(why)), m_ticker(period) {}

  int fd() const override { return m_ticker.fd(); }

  int add(const std::string& path, std::uint32_t mask) override {
    Target t;
    t.wd = m_next_wd++;
    t.mask = mask;
    t.dir = sys::Dir::open(path);
    t.arrived = first_of(mask, {IN_MOVED_TO, IN_CREATE, IN_CLOSE_WRITE});
    t.left = mask & (IN_MOVED_FROM | IN_DELETE); // a look cannot tell one from the other
    const struct stat st = sys::stat_of(t.dir.fd(), t.dir.path());
    list(t, st, nullptr); // what is there now is no event
    m_targets.push_back(std::move(t));
    return m_targets.back().wd;
  }

  int try_add_file(int fd, std::uint32_t mask) override {
    try {
      Target t;
      t.wd = m_next_wd++;
      t.mask = mask;
      t.file = sys::duplicate(fd, "a watched file");
      t.seen = stamp_of(sys::stat_of(t.file.get(), "a watched file"));
      m_targets.push_back(std::move(t));
      return m_targets.back().wd;
    } catch (const Error&) {
      return -1;
    }
  }

  void drain(const Handler& fn) override {
    m_ticker.clear();
    for (Target& t : m_targets) { // a deque: an add() from a handler moves no target
      if (t.file) {
        const Stamp s = stamp_of(sys::stat_of(t.file.get(), "a watched file"));
        if (s.mtime != t.seen.mtime || s.size != t.seen.size) {
          t.seen = s;
          if (t.mask & IN_MODIFY) {
            fn(t.wd, IN_MODIFY, {});
          }
        }
        continue;
      }
      if (t.mask & IN_CLOSE_NOWRITE) {
        fn(t.wd, IN_CLOSE_NOWRITE, {});
      }
      const struct stat st = sys::stat_of(t.dir.fd(), t.dir.path());
      const Micros mtime = sys::mtime_micros(st);
      // Changed since the last listing; or changed at the last one, so maybe again
      // within the same tick of the file-time clock; or on whole-second times, recent.
      const bool stale =
          mtime != t.seen_mtime || t.relist || (st.st_mtim.tv_nsec == 0 && now_micros() - mtime < k_coarse_window);
      if (stale && (t.keys.size() <= k_big_dir || monotonic_micros() >= t.listed_at + k_list_spacing * t.list_cost)) {
        list(t, st, &fn);
      } else if (t.left != 0 && !t.entries.empty()) {
        look_at_files(t, fn);
      }
    }
  }

private:
  struct Target {
    int wd = 0;
    std::uint32_t mask = 0;
    Fd file;                   // a watched file; or
    sys::Dir dir;              // a watched directory
    std::uint32_t arrived = 0; // the event for a new entry
    std::uint32_t left = 0;    // the events for one gone
    Stamp seen;                // the file's
    Micros seen_mtime = 0;     // the directory's, at its last listing
    bool relist = false;       // the last listing saw the mtime move
    Micros listed_at = 0;      // monotonic
    Micros list_cost = 0;
    std::vector<std::uint64_t> keys;                   // entry_key of each entry, sorted
    std::map<std::string, Stamp, std::less<>> entries; // each entry, while there are few
  };

  // Lists `t`'s directory (whose fstat is `st`); with `fn`, reports what changed since
  // the last listing. The new state is kept before any handler runs: a handler that
  // throws loses no event of another target, and a listing that fails keeps the old.
  static void list(Target& t, const struct stat& st, const Handler* fn) {
    const Micros start = monotonic_micros();
    std::vector<std::uint64_t> keys;
    keys.reserve(t.keys.size() + 16);
    std::vector<std::string> arrived;
    std::vector<std::pair<std::string, ino_t>> few; // the first entries, for a small directory
    t.dir.for_each_inode([&](std::string_view name, ino_t ino) {
      const std::uint64_t k = entry_key(name, ino);
      keys.push_back(k);
      if (fn && t.arrived && !std::binary_search(t.keys.begin(), t.keys.end(), k)) {
        arrived.emplace_back(name);
      }
      if (keys.size() <= k_small_dir) {
        few.emplace_back(name, ino);
      }
      return true;
    });
    const Micros cost = monotonic_micros() - start;
    std::sort(keys.begin(), keys.end());
    std::map<std::string, Stamp, std::less<>> entries;
    std::vector<std::string> written;
    if (keys.size() <= k_small_dir) {
      for (auto& [name, ino] : few) {
        const auto st_entry = t.dir.stat(name);
        if (!st_entry) {
          continue; // gone since the listing: the next one says so
        }
        const Stamp s = stamp_of(*st_entry);
        const auto old = t.entries.find(name);
        if (fn && old != t.entries.end() && old->second.ino == s.ino && old->second.ctime != s.ctime) {
          // The same name and inode, touched: moved away and back, or written.
          if (old->second.mtime != s.mtime || old->second.size != s.size) {
            written.push_back(name);
          } else if (t.arrived) {
            arrived.push_back(name);
          }
        }
        entries.emplace(std::move(name), s);
      }
    }
    std::vector<std::string> gone;
    if (fn && t.left && keys.size() <= k_small_dir) {
      for (const auto& [name, s] : t.entries) {
        if (entries.count(name) == 0) {
          gone.push_back(name);
        }
      }
    }
    const Micros old_mtime = t.seen_mtime;
    t.keys = std::move(keys);
    t.entries = std::move(entries);
    t.seen_mtime = sys::mtime_micros(st);
    t.relist = t.seen_mtime != old_mtime;
    t.listed_at = start;
    t.list_cost = cost;
    for (const std::string& name : gone) {
      (*fn)(t.wd, t.left, name);
    }
    for (const std::string& name : arrived) {
      (*fn)(t.wd, t.arrived, name);
    }
    for (const std::string& name : written) {
      if (t.mask & IN_CLOSE_WRITE) {
        (*fn)(t.wd, IN_CLOSE_WRITE, name);
      } else if (t.arrived) {
        (*fn)(t.wd, t.arrived, name);
      }
    }
  }

  // The regular files of a small directory watched for removals, written in place
  // (same inode, new mtime or size): IN_CLOSE_WRITE.
  static void look_at_files(Target& t, const Handler& fn) {
    std::vector<std::string> written;
    for (auto& [name, seen] : t.entries) {
      if (!seen.regular) {
        continue;
      }
      const auto st = t.dir.stat(name);
      if (!st || st->st_ino != seen.ino) {
        continue; // gone or replaced: the next listing tells
      }
      const Stamp s = stamp_of(*st);
      if (s.mtime != seen.mtime || s.size != seen.size) {
        written.push_back(name);
      }
      seen = s;
    }
    for (const std::string& name : written) {
      if (t.mask & IN_CLOSE_WRITE) {
        fn(t.wd, IN_CLOSE_WRITE, name);
      }
    }
  }

  sys::Ticker m_ticker;
  std::deque<Target> m_targets;
  int m_next_wd = 1;
};

} // namespace

std::unique_ptr<Watch> Watch::open() {
  const char* env = std::getenv("QUEUECTL_WATCH");
  const std::string_view choice = env ? env : "";
  if (choice == "poll") {
    return open_poll(k_poll_period, std::string(k_poll_asked));
  }
  if (!choice.empty() && choice != "inotify") {
    fail(fmt::format("QUEUECTL_WATCH is '{}': it must be 'inotify' or 'poll'", choice));
  }
  sys::Inotify in = sys::Inotify::try_open();
  if (!in) {
    const int err = errno;
    return open_poll(k_poll_period, fmt::format("no inotify instance ({}{})", std::strerror(err),
                                                err == EMFILE ? "; raise fs.inotify.max_user_instances" : ""));
  }
  return std::make_unique<InotifyWatch>(std::move(in));
}

std::unique_ptr<Watch> Watch::open_poll(Micros period, std::string why) {
  return std::make_unique<PollWatch>(period, std::move(why));
}

} // namespace queuectl
