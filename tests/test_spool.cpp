#include "queuectl/clock.hpp"
#include "queuectl/enqueue.hpp"
#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"
#include "support/spool_util.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

using namespace queuectl;
using namespace queuectl::test;
namespace fs = std::filesystem;

TEST_CASE("open: creates the tree, mode 0700", "[spool]") {
  TempDir dir;
  const Spool s = Spool::open(dir.path() / "a" / "b");
  for (const char* sub : {"", "tmp", "pending", "processing", "failed", "done", "dead", "workers"}) {
    struct stat st {};
    REQUIRE(::stat((dir.path() / "a" / "b" / sub).c_str(), &st) == 0);
    INFO(sub);
    CHECK((st.st_mode & 0777) == 0700);
  }
}

TEST_CASE("resolve: flag, then environment, then defaults; empty is an error", "[spool]") {
  CHECK(Spool::resolve("/x/y") == "/x/y");
  CHECK(code_of([] { Spool::resolve(""); }) == Exit::usage);
  ::setenv("QUEUECTL_SPOOL", "/from/env", 1);
  CHECK(Spool::resolve(std::nullopt) == "/from/env");
  ::setenv("QUEUECTL_SPOOL", "", 1);
  CHECK(code_of([] { Spool::resolve(std::nullopt); }) == Exit::usage);
  ::unsetenv("QUEUECTL_SPOOL");
  if (::geteuid() == 0) {
    CHECK(Spool::resolve(std::nullopt) == "/var/spool/queuectl");
  } else {
    ::setenv("XDG_STATE_HOME", "/xdg", 1);
    CHECK(Spool::resolve(std::nullopt) == "/xdg/queuectl");
  }
}

TEST_CASE("open_existing: creates nothing, says how a spool comes to exist", "[spool]") {
  TempDir dir;
  CHECK(code_of([&] { Spool::open_existing(dir.path() / "none"); }) == Exit::failure);
  CHECK_FALSE(fs::exists(dir.path() / "none"));
  CHECK(code_of([&] { Spool::open_existing(dir.path()); }) == Exit::failure); // a directory, not a spool
  CHECK(files_in(dir.path()) == 0);
  Spool::open(dir.path() / "s");
  CHECK(Spool::open_existing(dir.path() / "s").root() == dir.path() / "s");
}

TEST_CASE("enqueue: a durable file in pending/, nothing left in tmp/", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const std::string id = enqueue_cmd(s, "echo hi");
  CHECK(s.find(id) == JobState::pending);
  CHECK(files_in(dir.path() / "tmp") == 0);
  const StoredJob sj = s.load(id);
  CHECK(sj.job.command() == "echo hi");
  CHECK(sj.job.json()["state"] == "pending");
  CHECK(sj.job.json()["max_retries"] == 3);
}

TEST_CASE("enqueue: an id already used in any state is refused", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  enqueue_cmd(s, "true", "job1");
  CHECK(code_of([&] { enqueue_cmd(s, "true", "job1"); }) == Exit::failure);
  // Move it to done/ by hand: still taken.
  fs::rename(dir.path() / "pending" / "job1.json", dir.path() / "done" / "job1.json");
  CHECK(code_of([&] { enqueue_cmd(s, "true", "job1"); }) == Exit::failure);
  CHECK(files_in(dir.path() / "pending") == 0);
  CHECK(files_in(dir.path() / "tmp") == 0);
}

TEST_CASE("enqueue_lines: all or nothing, errors name the line", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  std::string msg;
  try {
    enqueue_lines(s, "{\"command\":\"a\"}\n\n{\"command\":\"b\"}\n{\"comand\":\"c\"}\n", {});
  } catch (const Error& e) {
    CHECK(e.code() == Exit::usage);
    msg = e.what();
  }
  CHECK_THAT(msg, Catch::StartsWith("line 4: missing field 'command'"));
  CHECK(s.counts()[0] == 0);
  SECTION("duplicate ids inside the batch") {
    CHECK(code_of([&] {
            enqueue_lines(s, "{\"command\":\"a\",\"id\":\"x\"}\n{\"command\":\"b\",\"id\":\"x\"}\n", {});
          }) == Exit::usage);
    CHECK(s.counts()[0] == 0);
  }
  SECTION("a good batch keeps input order") {
    const auto ids = enqueue_lines(s, "{\"command\":\"a\",\"id\":\"first\"}\n{\"command\":\"b\"}\n", {});
    REQUIRE(ids.size() == 2);
    CHECK(ids[0] == "first");
    CHECK(s.counts()[0] == 2);
    CHECK(files_in(dir.path() / "tmp") == 0);
  }
  // Large batches are built by several threads: the rules must hold all the same.
  std::string big;
  for (int i = 0; i < 5000; ++i) {
    big += "{\"command\":\"true\",\"x-n\":" + std::to_string(i) + "}\n";
  }
  SECTION("a large batch: generated ids increase in input order, nothing left in tmp/") {
    const JobIds batch = enqueue_lines(s, big, {});
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      ids.push_back(batch[i]);
    }
    REQUIRE(ids.size() == 5000);
    CHECK(std::is_sorted(ids.begin(), ids.end()));
    CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
    CHECK(s.load(ids[4321]).job.json()["x-n"] == 4321);
    CHECK(s.counts()[0] == 5000);
    CHECK(files_in(dir.path() / "tmp") == 0);
  }
  SECTION("a large batch with one bad line near its end: the first bad line, nothing written") {
    const std::string bad = big + "{\"command\":\"true\"}\n" + "{\"command\":3}\n" + "{\"comand\":1}\n";
    try {
      enqueue_lines(s, bad, {});
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(e.code() == Exit::usage);
      CHECK_THAT(std::string(e.what()), Catch::StartsWith("line 5002: "));
    }
    CHECK(s.counts()[0] == 0);
    CHECK(files_in(dir.path() / "tmp") == 0);
  }
  SECTION("a bad line, then many: the first one is reported, whichever thread sees which") {
    // Threads that start on a bad line fail at once; the one holding line 2001 must still
    // get there.
    std::string bad;
    for (int i = 0; i < 5000; ++i) {
      bad += i == 2000 || i >= 2100 ? "{\"comand\":1}\n" : "{\"command\":\"true\"}\n";
    }
    for (int round = 0; round < 3; ++round) {
      try {
        enqueue_lines(s, bad, {});
        FAIL("no error");
      } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Catch::StartsWith("line 2001: "));
      }
    }
    CHECK(files_in(dir.path() / "tmp") == 0);
  }
  SECTION("a large batch repeating an id far apart: refused, nothing written") {
    const std::string dup = "{\"command\":\"a\",\"id\":\"x\"}\n" + big + "{\"command\":\"b\",\"id\":\"x\"}\n";
    CHECK(code_of([&] { enqueue_lines(s, dup, {}); }) == Exit::usage);
    CHECK(s.counts()[0] == 0);
    CHECK(files_in(dir.path() / "tmp") == 0);
  }
}

TEST_CASE("counts and list: entries, not temporaries or other files", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const std::string a = enqueue_cmd(s, "a");
  const std::string b = enqueue_cmd(s, "b");
  std::ofstream(dir.path() / "pending" / ".x.json.tmp") << "{}";
  std::ofstream(dir.path() / "pending" / "notes.txt") << "hi";
  fs::create_symlink("/etc/passwd", dir.path() / "pending" / "link.json");
  const auto c = s.counts();
  CHECK(c[static_cast<int>(JobState::pending)] == 2);
  const auto jobs = s.list(JobState::pending);
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].job.id() == a); // oldest first
  CHECK(jobs[1].job.id() == b);
}

TEST_CASE("list with a limit: the oldest N, as the full list starts", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  // Enough jobs for several threads and for each to prune what it keeps; created_at
  // scrambled, with ties (every 1000 apart share a second) that the id orders.
  const int n = 5000;
  write_scrambled_jobs(dir.path() / "pending", n);
  std::ofstream(dir.path() / "done" / "d1.json") << R"({"id":"d1","command":"x","created_at":"2000-01-01T00:00:00Z"})";
  const auto ids = [](const std::vector<StoredJob>& jobs) {
    std::vector<std::string> v;
    for (const StoredJob& sj : jobs) {
      v.push_back(sj.job.id());
    }
    return v;
  };
  const auto full = ids(s.list(JobState::pending));
  REQUIRE(full.size() == n);
  const auto all = s.list(JobState::pending);
  for (std::size_t i = 1; i < all.size(); ++i) {
    const auto a = all[i - 1].job.time_field("created_at");
    const auto b = all[i].job.time_field("created_at");
    REQUIRE((*a < *b || (*a == *b && all[i - 1].job.id() < all[i].job.id())));
  }
  for (std::size_t max : {0, 1, 7, 1500, 4999, 5000, 6000}) {
    INFO(max);
    const auto part = ids(s.list(JobState::pending, max));
    CHECK(part ==
          std::vector<std::string>(full.begin(), full.begin() + static_cast<long>(std::min<std::size_t>(max, n))));
  }
  const auto every = ids(s.list_all());
  REQUIRE(every.size() == n + 1);
  CHECK(every[0] == "d1"); // the oldest, from done/
  CHECK(ids(s.list_all(3)) == std::vector<std::string>(every.begin(), every.begin() + 3));
}

TEST_CASE("network_fs_name: network and cluster file systems by statfs type; local ones pass", "[spool]") {
  // statfs(2) types as the kernel reports them (linux/magic.h, cifs and ceph headers).
  CHECK(network_fs_name(0x6969) == "NFS");
  CHECK(network_fs_name(0x517B) == "SMB");
  CHECK(network_fs_name(0xFF534D42) == "CIFS");
  CHECK(network_fs_name(0xFE534D42) == "SMB2");
  CHECK(network_fs_name(0x00C36400) == "CephFS");
  CHECK(network_fs_name(0x01021997) == "9P");
  CHECK(network_fs_name(0x7461636F) == "OCFS2");
  // A 32-bit magic with its top bit set may come sign-extended in a 64-bit f_type.
  CHECK(network_fs_name(static_cast<long>(static_cast<std::int32_t>(0xFF534D42U))) == "CIFS");
  CHECK_FALSE(network_fs_name(0xEF53));     // ext4
  CHECK_FALSE(network_fs_name(0x58465342)); // XFS
  CHECK_FALSE(network_fs_name(0x9123683E)); // Btrfs
  CHECK_FALSE(network_fs_name(0x01021994)); // tmpfs
  CHECK_FALSE(network_fs_name(0x2FC12FC1)); // ZFS
  CHECK_FALSE(network_fs_name(0x65735546)); // FUSE: cannot tell, allowed
  CHECK_FALSE(network_fs_name(0x794C7630)); // overlayfs (containers)
}

TEST_CASE("open: a local spool passes the file system check, made or not yet made", "[spool]") {
  TempDir dir;
  const auto type = sys::fs_type(dir.path() / "not" / "yet" / "made");
  REQUIRE(type);
  CHECK(*type == sys::fs_type(dir.path()));
  CHECK_FALSE(network_fs_name(*type));
  CHECK_NOTHROW(Spool::open(dir.path() / "s"));
}
