#include "queuectl/clock.hpp"
#include "queuectl/enqueue.hpp"
#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"

#include "support/temp_dir.hpp"

#include <fmt/format.h>

#include <catch2/catch.hpp>

#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

using namespace queuectl;
namespace fs = std::filesystem;

namespace {

std::string enqueue_cmd(Spool& s, const std::string& cmd, const std::optional<std::string>& id = std::nullopt) {
  JobOverrides o;
  o.command = cmd;
  o.id = id;
  return enqueue_one(s, Json(), o);
}

std::size_t files_in(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

Exit code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return Exit::ok;
}

} // namespace

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

TEST_CASE("resolve: flag, then environment, then defaults", "[spool]") {
  CHECK(Spool::resolve("/x/y") == "/x/y");
  ::setenv("QUEUECTL_SPOOL", "/from/env", 1);
  CHECK(Spool::resolve("") == "/from/env");
  ::unsetenv("QUEUECTL_SPOOL");
  if (::geteuid() == 0) {
    CHECK(Spool::resolve("") == "/var/spool/queuectl");
  } else {
    ::setenv("XDG_STATE_HOME", "/xdg", 1);
    CHECK(Spool::resolve("") == "/xdg/queuectl");
  }
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
    CHECK(code_of([&] { enqueue_lines(s, "{\"command\":\"a\",\"id\":\"x\"}\n{\"command\":\"b\",\"id\":\"x\"}\n", {}); }) ==
          Exit::usage);
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
    const auto ids = enqueue_lines(s, big, {});
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
  std::string lines;
  for (int i = 0; i < n; ++i) {
    lines += fmt::format(R"({{"id":"j{}","command":"true","created_at":"{}"}})", i,
                         format_time(1'700'000'000'000'000 + static_cast<Micros>((i * 7919) % 1000) * 1'000'000)) +
             "\n";
  }
  enqueue_lines(s, lines, {});
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
    CHECK(part == std::vector<std::string>(full.begin(), full.begin() + static_cast<long>(std::min<std::size_t>(max, n))));
  }
  const auto every = ids(s.list_all());
  REQUIRE(every.size() == n + 1);
  CHECK(every[0] == "d1"); // the oldest, from done/
  CHECK(ids(s.list_all(3)) == std::vector<std::string>(every.begin(), every.begin() + 3));
}

TEST_CASE("lock_job and move: the lock excludes, a move never overwrites", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const std::string id = enqueue_cmd(s, "true", "j");
  auto first = s.lock_job(JobState::pending, id);
  REQUIRE(first);
  CHECK_FALSE(s.lock_job(JobState::pending, id)); // flock is per open file: excluded
  // A job of the same id in done/ already: the move is refused and nothing changes.
  std::ofstream(dir.path() / "done" / "j.json") << "{\"command\":\"other\"}\n";
  Job job = Job::parse(first->content);
  CHECK(code_of([&] { s.move(*first, JobState::completed, job, true); }) == Exit::failure);
  CHECK(fs::exists(dir.path() / "pending" / "j.json"));
  std::ifstream in(dir.path() / "done" / "j.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "{\"command\":\"other\"}\n");
  SECTION("a move keeps the new file locked and writes the new state") {
    fs::remove(dir.path() / "done" / "j.json");
    s.move(*first, JobState::processing, job, true);
    CHECK(s.find(id) == JobState::processing);
    CHECK_FALSE(s.lock_job(JobState::processing, id));
    CHECK(s.load(id).job.json()["state"] == "processing");
    first.reset();
    CHECK(s.lock_job(JobState::processing, id));
  }
}

namespace {

std::vector<std::string> dot_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string()[0] == '.') {
      out.push_back(e.path().filename().string());
    }
  }
  return out;
}

ino_t inode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_ino;
}

} // namespace

TEST_CASE("spares: a rewrite swaps inodes instead of creating and freeing them", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const fs::path processing = dir.path() / "processing";
  std::optional<Spares> spares(std::in_place, "t");
  auto move_to_processing = [&](const std::string& id, const std::string& cmd) {
    enqueue_cmd(s, cmd, id);
    auto locked = s.lock_job(JobState::pending, id);
    REQUIRE(locked);
    Job job = Job::parse(locked->content);
    job.json()["attempts"] = 1;
    s.move(*locked, JobState::processing, job, true, &*spares);
    return locked;
  };
  // A long command first, then a short one through the same spare: no stale bytes.
  auto a = move_to_processing("a", std::string(3000, 'x'));
  REQUIRE(dot_files(processing).size() == 1);
  const fs::path spare = processing / dot_files(processing)[0];
  const ino_t a_pending = inode_of(spare); // a's old inode became the spare
  enqueue_cmd(s, "true", "b");
  const ino_t b_pending = inode_of(dir.path() / "pending" / "b.json");
  auto locked = s.lock_job(JobState::pending, "b");
  REQUIRE(locked);
  Job job = Job::parse(locked->content);
  // As a worker's command does, something else shares the descriptor of b's old file.
  Fd command_copy(::dup(locked->lock.get()));
  s.move(*locked, JobState::processing, job, true, &*spares);
  auto b = std::move(locked);
  // b's content went into a's old inode, and b's old inode is the spare now.
  CHECK(inode_of(processing / "b.json") == a_pending);
  CHECK(inode_of(spare) == b_pending);
  CHECK(dot_files(processing).size() == 1);
  CHECK(s.load("a").job.command() == std::string(3000, 'x'));
  CHECK(s.load("b").job.command() == "true");
  CHECK(fs::file_size(processing / "b.json") == b->content.size());
  // Both names stay locked by their holders throughout.
  CHECK_FALSE(s.lock_job(JobState::processing, "a"));
  CHECK_FALSE(s.lock_job(JobState::processing, "b"));
  SECTION("a spare someone else still holds is dropped, not reused") {
    a.reset();
    b.reset();
    auto c = move_to_processing("c", "echo c"); // the command still holds b's old file
    CHECK(inode_of(processing / "c.json") != b_pending);
    CHECK(s.load("c").job.command() == "echo c");
    CHECK_FALSE(fs::exists(spare));
    CHECK(dot_files(processing).size() == 1);
  }
  SECTION("a spare nobody else holds is reused") {
    command_copy.reset();
    auto c = move_to_processing("c", "echo c");
    CHECK(inode_of(processing / "c.json") == b_pending);
  }
  SECTION("the spares are removed with their owner") {
    spares.reset();
    CHECK(dot_files(processing).empty());
    CHECK(s.load("b").job.command() == "true");
  }
}

TEST_CASE("cancel, retry_dead and purge", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const std::string id = enqueue_cmd(s, "true", "c1");
  s.cancel(id);
  StoredJob sj = s.load(id);
  CHECK(sj.state == JobState::dead);
  CHECK(sj.job.json()["last_error"] == "cancelled");
  CHECK(code_of([&] { s.cancel(id); }) == Exit::failure);
  s.retry_dead(id);
  sj = s.load(id);
  CHECK(sj.state == JobState::pending);
  CHECK(sj.job.attempts() == 0);
  CHECK(sj.job.json()["last_error"] == "cancelled"); // kept until the next run
  CHECK(code_of([&] { s.retry_dead(id); }) == Exit::failure);
  s.cancel(id);
  std::ofstream(dir.path() / "dead" / "c1.log") << "output\n";
  CHECK(s.purge(JobState::dead, 3600.0) == 0); // too young
  CHECK(s.purge(JobState::dead, std::nullopt) == 1);
  CHECK(files_in(dir.path() / "dead") == 0);
  CHECK(code_of([&] { s.load(id); }) == Exit::failure);
  CHECK(code_of([&] { s.load("bad id"); }) == Exit::usage);
}

TEST_CASE("quarantine: original kept byte for byte, record beside it", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  std::ofstream(dir.path() / "pending" / "broken.json") << "{not json";
  const std::string rid = s.quarantine(JobState::pending, "broken.json", "invalid JSON", Json());
  CHECK(rid == "broken");
  std::ifstream in(dir.path() / "dead" / "broken.json.orig");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "{not json");
  const StoredJob sj = s.load("broken");
  CHECK(sj.state == JobState::dead);
  CHECK(sj.job.json()["last_error"] == "invalid JSON");
  CHECK(sj.job.json()["original_file"] == "broken.json.orig");
  CHECK(s.purge(JobState::dead, std::nullopt) == 1);
  CHECK(files_in(dir.path() / "dead") == 0);
}
