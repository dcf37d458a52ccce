#include "queuectl/error.hpp"
#include "queuectl/watch.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

using namespace queuectl;

namespace {

struct Event {
  int wd;
  std::uint32_t mask;
  std::string name;
};

// What one drain reports. Both kinds report synchronously: inotify queues an event in
// the system call that makes it, and a poll watch looks when drained.
std::vector<Event> drain(Watch& w) {
  std::vector<Event> got;
  w.drain([&](int wd, std::uint32_t mask, std::string_view name) { got.push_back({wd, mask, std::string(name)}); });
  return got;
}

bool has(const std::vector<Event>& evs, int wd, std::uint32_t mask, const std::string& name) {
  for (const Event& e : evs) {
    if (e.wd == wd && (e.mask & mask) && e.name == name) {
      return true;
    }
  }
  return false;
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

std::unique_ptr<Watch> open_kind(const std::string& kind) {
  return kind == "poll" ? Watch::open_poll(10'000) : Watch::open();
}

} // namespace

TEST_CASE("watch: both kinds report arrivals, replacements, removals, writes in place and file growth", "[watch]") {
  for (const std::string kind : {"inotify", "poll"}) {
    INFO(kind);
    TempDir dir;
    const auto d = dir.path();
    std::filesystem::create_directory(d / "pending");
    write_file(d / "config.json", "{}");
    write_file(d / "pending" / "old.json", "{}");
    const auto w = open_kind(kind);
    CHECK(w->polling().empty() == (kind == "inotify"));
    const int pending = w->add((d / "pending").string(), IN_MOVED_TO | IN_CLOSE_WRITE);
    const int root = w->add(d.string(), IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_DELETE);
    CHECK(drain(*w).empty()); // what was there before is no event

    // A job renamed in from tmp/.
    write_file(d / "a.tmp", "{}");
    std::filesystem::rename(d / "a.tmp", d / "pending" / "a.json");
    auto evs = drain(*w);
    CHECK(has(evs, pending, IN_MOVED_TO, "a.json"));
    CHECK_FALSE(has(evs, pending, IN_ALL_EVENTS, "old.json"));

    // A second arrival at once, within the same tick of the file-time clock as the last
    // listing: the directory's mtime does not move (set back here, as a coarse clock
    // would leave it).
    struct stat before {};
    REQUIRE(::stat((d / "pending").c_str(), &before) == 0);
    write_file(d / "b.tmp", "{}");
    std::filesystem::rename(d / "b.tmp", d / "pending" / "b.json");
    const struct timespec times[2] = {before.st_atim, before.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, (d / "pending").c_str(), times, 0) == 0);
    CHECK(has(drain(*w), pending, IN_MOVED_TO, "b.json"));

    // config.json replaced by rename: the same name on a new inode.
    write_file(d / "config.tmp", R"({"max_retries":1})");
    std::filesystem::rename(d / "config.tmp", d / "config.json");
    CHECK(has(drain(*w), root, IN_MOVED_TO, "config.json"));

    // Written in place (an editor's save; another size, as times may not move), then removed.
    write_file(d / "config.json", R"({"max_retries":25})");
    CHECK(has(drain(*w), root, IN_CLOSE_WRITE, "config.json"));
    std::filesystem::remove(d / "config.json");
    CHECK(has(drain(*w), root, IN_DELETE, "config.json"));

    // A file that grows (a job's log).
    const int log = ::open((d / "job.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(log >= 0);
    const int wd = w->try_add_file(log, IN_MODIFY);
    REQUIRE(wd >= 0);
    drain(*w);
    REQUIRE(::write(log, "x\n", 2) == 2);
    CHECK(has(drain(*w), wd, IN_MODIFY, ""));
    ::close(log);

    // A job that leaves and comes back on its own inode between two looks (held and
    // released, retried): news all the same.
    std::filesystem::rename(d / "pending" / "a.json", d / "a.json");
    std::filesystem::rename(d / "a.json", d / "pending" / "a.json");
    CHECK(has(drain(*w), pending, IN_MOVED_TO, "a.json"));

    // Arrivals in a directory far past the size where each entry is looked at.
    for (int i = 0; i < 200; ++i) {
      write_file(d / "pending" / ("n" + std::to_string(i) + ".json"), "{}");
    }
    drain(*w);
    std::filesystem::rename(d / "pending" / "a.json", d / "a.json");
    std::filesystem::rename(d / "a.json", d / "pending" / "late.json");
    evs = drain(*w);
    CHECK(has(evs, pending, IN_MOVED_TO, "late.json"));
  }
}

TEST_CASE("watch: a poll watch's descriptor is readable once a period", "[watch]") {
  TempDir dir;
  const auto w = Watch::open_poll(300'000);
  w->add(dir.path().string(), IN_MOVED_TO);
  pollfd p{w->fd(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1); // the bound is for a hang; a period is 300 ms
  drain(*w);
  p.revents = 0;
  CHECK(::poll(&p, 1, 0) == 0); // drained: quiet until the next period
}

TEST_CASE("watch: a poll watch reports a nameless IN_CLOSE_NOWRITE at every look when asked", "[watch]") {
  // A lock's release leaves nothing to see: the slots' waiter tries again at each look.
  TempDir dir;
  const auto w = Watch::open_poll();
  const int slots = w->add(dir.path().string(), IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
  const int other = w->add(dir.path().string(), IN_MOVED_TO);
  for (int i = 0; i < 2; ++i) {
    const auto evs = drain(*w);
    CHECK(has(evs, slots, IN_CLOSE_NOWRITE, ""));
    CHECK_FALSE(has(evs, other, IN_ALL_EVENTS, ""));
  }
}

TEST_CASE("watch: QUEUECTL_WATCH chooses the kind; another value is an error that names both", "[watch]") {
  const char* old = std::getenv("QUEUECTL_WATCH");
  const std::string saved = old ? old : "";
  ::setenv("QUEUECTL_WATCH", "poll", 1);
  CHECK(Watch::open()->polling() == "QUEUECTL_WATCH=poll");
  ::setenv("QUEUECTL_WATCH", "inotify", 1);
  CHECK(Watch::open()->polling().empty());
  ::setenv("QUEUECTL_WATCH", "kqueue", 1);
  try {
    Watch::open();
    FAIL("QUEUECTL_WATCH=kqueue was taken");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "QUEUECTL_WATCH is 'kqueue': it must be 'inotify' or 'poll'");
  }
  if (old) {
    ::setenv("QUEUECTL_WATCH", saved.c_str(), 1);
  } else {
    ::unsetenv("QUEUECTL_WATCH");
  }
}
