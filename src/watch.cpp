#include "queuectl/watch.hpp"

#include "queuectl/error.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
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

// File times come from a clock that moves in jiffies (up to 10 ms): a change this soon
// after a listing may leave a directory's mtime as the listing saw it.
constexpr Micros k_coarse_time = 50'000;
// Directories this small, watched for removals, have each regular file looked at.
constexpr std::size_t k_small_dir = 64;
// A directory of more entries than this is listed again only after ten times what its
// last listing cost (a million pending jobs take a few hundred ms to list).
constexpr std::size_t k_big_dir = 4096;
constexpr Micros k_list_spacing = 10;

// What a look at a file sees: a change to any of these is a change to the file.
struct Stamp {
  Micros mtime = 0;
  off_t size = 0;
  ino_t ino = 0;
  bool operator==(const Stamp&) const = default;
};

Stamp stamp_of(const struct stat& st) {
  return Stamp{sys::mtime_micros(st), st.st_size, st.st_ino};
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
    t.look_inside = t.left != 0;
    list(t, now_micros(), nullptr); // what is there now is no event
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
    const Micros now = now_micros();
    for (Target& t : m_targets) {
      if (t.file) {
        const Stamp s = stamp_of(sys::stat_of(t.file.get(), "a watched file"));
        if (s != t.seen) {
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
      const Micros mtime = sys::mtime_micros(sys::stat_of(t.dir.fd(), t.dir.path()));
      // Changed since the last listing, or maybe changed again within the same tick of
      // the file-time clock.
      const bool stale = mtime != t.seen.mtime || t.listed_at <= mtime + k_coarse_time;
      if (stale && (t.keys.size() <= k_big_dir || now >= t.listed_at + k_list_spacing * t.list_cost)) {
        list(t, now, &fn);
      } else if (!t.entries.empty()) {
        look_at_entries(t, fn);
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
    bool look_inside = false;  // each regular file is looked at while the directory is small
    Stamp seen;                // the file's, or the directory's mtime at its last listing
    Micros listed_at = 0;
    Micros list_cost = 0;
    std::vector<std::uint64_t> keys;                   // entry_key of each entry, sorted
    std::map<std::string, Stamp, std::less<>> entries; // each regular file, when looked inside
  };

  // Lists `t`'s directory; with `fn`, reports the entries new since the last listing
  // (and, looking inside, those gone and those written).
  static void list(Target& t, Micros now, const Handler* fn) {
    const Micros start = now_micros();
    t.seen.mtime = sys::mtime_micros(sys::stat_of(t.dir.fd(), t.dir.path()));
    std::vector<std::uint64_t> keys;
    keys.reserve(t.keys.size() + 16);
    std::vector<std::string> arrived;
    std::vector<std::pair<std::string, ino_t>> names; // while the directory is small
    t.dir.for_each_inode([&](std::string_view name, ino_t ino) {
      const std::uint64_t k = entry_key(name, ino);
      keys.push_back(k);
      if (fn && t.arrived && !std::binary_search(t.keys.begin(), t.keys.end(), k)) {
        arrived.emplace_back(name);
      }
      if (t.look_inside && keys.size() <= k_small_dir) {
        names.emplace_back(name, ino);
      }
      return true;
    });
    std::sort(keys.begin(), keys.end());
    t.keys = std::move(keys);
    if (t.look_inside) {
      std::map<std::string, Stamp, std::less<>> entries; // its regular files
      if (t.keys.size() <= k_small_dir) {
        for (auto& [name, ino] : names) {
          const auto old = t.entries.find(name);
          if (old != t.entries.end() && old->second.ino == ino) {
            entries.emplace(std::move(name), old->second);
          } else if (const auto st = t.dir.stat(name); st && S_ISREG(st->st_mode)) {
            entries.emplace(std::move(name), stamp_of(*st)); // as it is now: only a later write is one
          }
        }
      }
      if (fn && t.left) {
        for (const auto& [name, s] : t.entries) {
          if (entries.count(name) == 0 && t.keys.size() <= k_small_dir) {
            (*fn)(t.wd, t.left, name);
          }
        }
      }
      t.entries = std::move(entries);
    }
    for (const std::string& name : arrived) {
      (*fn)(t.wd, t.arrived, name);
    }
    if (fn) {
      look_at_entries(t, *fn);
    }
    t.listed_at = now;
    t.list_cost = std::max<Micros>(0, now_micros() - start);
  }

  // A regular file of a small directory written in place: IN_CLOSE_WRITE.
  static void look_at_entries(Target& t, const Handler& fn) {
    for (auto& [name, seen] : t.entries) {
      const auto st = t.dir.stat(name);
      if (!st || !S_ISREG(st->st_mode) || st->st_ino != seen.ino) {
        continue; // gone or replaced: the next listing tells
      }
      const Stamp s = stamp_of(*st);
      if (s != seen) {
        seen = s;
        if (t.mask & IN_CLOSE_WRITE) {
          fn(t.wd, IN_CLOSE_WRITE, name);
        }
      }
    }
  }

  sys::Ticker m_ticker;
  std::vector<Target> m_targets;
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
