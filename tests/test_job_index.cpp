#include "queuectl/job_index.hpp"
#include "queuectl/pending_index.hpp"
#include "support/spool_util.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace queuectl;
using namespace queuectl::test;
namespace fs = std::filesystem;

namespace {
IndexEntry entry(std::string id, std::int64_t prio, Micros created, Micros due = 0) {
  IndexEntry e;
  e.id = std::move(id);
  e.priority = prio;
  e.created = created;
  e.due = due;
  return e;
}
std::vector<std::string> drain(JobIndex& ix, Micros now) {
  std::vector<std::string> out;
  while (auto e = ix.pop_ready(now)) {
    out.push_back(e->id);
  }
  return out;
}
} // namespace

TEST_CASE("index: pop_ready skips the entries that cannot start, and keeps them", "[index]") {
  JobIndex ix;
  ix.add(entry("a", 5, 1));
  ix.add(entry("b", 4, 1));
  ix.add(entry("c", 3, 1));
  const auto not_a_or_b = [](const IndexEntry& e) { return e.id != "a" && e.id != "b"; };
  auto e = ix.pop_ready(0, not_a_or_b);
  REQUIRE(e);
  CHECK(e->id == "c");
  CHECK_FALSE(ix.pop_ready(0, not_a_or_b));
  CHECK(ix.size() == 2);
  CHECK_FALSE(ix.needs_scan(0)); // skipped jobs are kept, not run out
  CHECK(drain(ix, 0) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("index: priority first, then oldest, then id", "[index]") {
  JobIndex ix;
  ix.add(entry("c", 0, 30));
  ix.add(entry("a", 0, 10));
  ix.add(entry("hi", 5, 99));
  ix.add(entry("b2", 0, 20));
  ix.add(entry("b1", 0, 20));
  ix.add(entry("lo", -1, 1));
  CHECK(drain(ix, 0) == std::vector<std::string>{"hi", "a", "b1", "b2", "c", "lo"});
  CHECK(ix.size() == 0);
}

TEST_CASE("index: a job is indexed once", "[index]") {
  JobIndex ix;
  CHECK(ix.add(entry("a", 0, 1)));
  CHECK_FALSE(ix.add(entry("a", 9, 1)));
  CHECK(ix.contains("a", JobState::pending));
  CHECK(drain(ix, 0).size() == 1);
  CHECK_FALSE(ix.contains("a", JobState::pending));
}

TEST_CASE("index: jobs that are not due wait for their time", "[index]") {
  JobIndex ix;
  ix.add(entry("later", 9, 1, 2000));
  ix.add(entry("soon", 0, 2, 1000));
  ix.add(entry("now", 0, 3));
  CHECK(ix.next_due() == 1000);
  CHECK(drain(ix, 500) == std::vector<std::string>{"now"});
  CHECK(drain(ix, 1000) == std::vector<std::string>{"soon"});
  CHECK(ix.next_due() == 2000);
  CHECK(drain(ix, 5000) == std::vector<std::string>{"later"});
  CHECK_FALSE(ix.next_due().has_value());
}

TEST_CASE("index_entry: reads priority, created_at and due time", "[index]") {
  const auto e = index_entry(
      "x", JobState::pending,
      R"({"command":"c","priority":4,"created_at":"1970-01-01T00:00:01Z","run_at":"1970-01-01T00:00:02Z"})", 0, 77);
  CHECK(e.priority == 4);
  CHECK(e.created == 1'000'000);
  CHECK(e.due == 2'000'000);
  const auto f =
      index_entry("y", JobState::failed,
                  R"({"command":"c","next_run_at":"1970-01-01T00:00:03Z","run_at":"1970-01-01T00:00:02Z"})", 2, 77);
  CHECK(f.due == 3'000'000);
  CHECK(f.priority == 2);
  CHECK(f.created == 77);
  const auto g = index_entry("z", JobState::pending, "not json", 1, 5);
  CHECK(g.due == 0);
  CHECK(g.priority == 1);
}

TEST_CASE("index: a stale entry from pending/ does not hide the job's retry from failed/", "[index]") {
  JobIndex ix;
  const IndexEntry pending = entry("x", 0, 1);
  IndexEntry failed = entry("x", 0, 1, 100);
  failed.from = JobState::failed;
  CHECK(ix.add(pending));
  CHECK(ix.add(failed)); // another worker ran it, and it failed: its retry is due at 100
  CHECK_FALSE(ix.add(failed));
  CHECK(ix.size() == 2);
  const auto stale = ix.pop_ready(50); // its claim will find pending/x gone
  REQUIRE(stale);
  CHECK(stale->from == JobState::pending);
  CHECK_FALSE(ix.contains("x", JobState::pending));
  CHECK(ix.contains("x", JobState::failed));
  CHECK_FALSE(ix.pop_ready(50));
  const auto retry = ix.pop_ready(100);
  REQUIRE(retry);
  CHECK(retry->from == JobState::failed);
  CHECK(ix.size() == 0);
  CHECK_FALSE(ix.contains("x", JobState::failed));
}

TEST_CASE("index: bounded, it keeps the first jobs and remembers where it cut", "[index]") {
  JobIndex ix(3);
  for (int i : {5, 2, 9, 1, 7, 4}) {
    ix.add(entry(fmt::format("j{}", i), 0, i));
  }
  CHECK(ix.size() == 3);
  CHECK(ix.truncated());
  CHECK_FALSE(ix.needs_scan(0));
  CHECK_FALSE(ix.add(entry("late", 0, 8))); // after the cut (j4): left for the next scan
  CHECK(ix.add(entry("urgent", 1, 99)));    // before it: kept, and j4 is left out now
  CHECK_FALSE(ix.contains("j4", JobState::pending));
  CHECK(drain(ix, 0) == std::vector<std::string>{"urgent", "j1", "j2"});
  CHECK(ix.needs_scan(0)); // j2, j4, ... wait on disk
  ix.clear();
  CHECK_FALSE(ix.truncated());
  CHECK_FALSE(ix.needs_scan(0));
}

TEST_CASE("index: bounded timers; a timer left out makes a scan due at its time", "[index]") {
  JobIndex ix(2);
  ix.add(entry("t300", 0, 1, 300));
  ix.add(entry("t100", 0, 2, 100));
  ix.add(entry("t200", 0, 3, 200));
  CHECK(ix.size() == 2);
  CHECK(ix.next_due() == 100);
  CHECK_FALSE(ix.add(entry("t400", 0, 4, 400)));
  CHECK(drain(ix, 250) == std::vector<std::string>{"t100", "t200"});
  CHECK(ix.next_due() == 300); // the earliest left out: the worker wakes then
  CHECK_FALSE(ix.needs_scan(250));
  CHECK(ix.needs_scan(300));
}

TEST_CASE("pending.index: lines round-trip; torn, foreign and merged lines are refused", "[index]") {
  IndexEntry e = entry("a-1.b_c", -3, 1'700'000'000'000'123, 42);
  std::string text;
  pending_index::append_line(text, e);
  CHECK(text == "J -3 1700000000000123 42 a-1.b_c\n");
  IndexEntry out;
  REQUIRE(pending_index::parse_line(text.substr(0, text.size() - 1), out));
  CHECK(out.id == e.id);
  CHECK(out.priority == -3);
  CHECK(out.created == e.created);
  CHECK(out.due == 42);
  // A job of a named queue: "Q", the queue before the id.
  IndexEntry qe = entry("j2", 1, 5, 0);
  qe.queue = "builds";
  text.clear();
  pending_index::append_line(text, qe);
  CHECK(text == "Q 1 5 0 builds j2\n");
  REQUIRE(pending_index::parse_line(text.substr(0, text.size() - 1), out));
  CHECK(out.queue == "builds");
  CHECK(out.id == "j2");
  REQUIRE(pending_index::parse_line("J -3 1700000000000123 42 a-1.b_c", out));
  CHECK(out.queue.empty());
  for (const char* bad :
       {"", "J", "J 1 2 3", "J 1 2 3 x y", "K 1 2 3 x", "J 1 2 x3 x", "J 1 2 3 bad/id", "JJ 7 1700 0 xyz",
        "J 5 17J 7 1700 0 xyz", "J 5 1700 0 abJ 7 1800 0 xyz", "J 5 1 2 -x", "Q 1 2 3 x", "Q 1 2 3 q x y",
        "Q 1 2 3 default x", "Q 1 2 3 b/d x", "Q 1 2 3 qJ 1 2 3 x", "J 1 2 Q 1 2 3 q x"}) {
    CAPTURE(bad);
    CHECK_FALSE(pending_index::parse_line(bad, out));
  }
}

namespace {

// The ids of the jobs in pending/ and failed/ in the order of work, from their files.
std::vector<std::string> expected_order(const Spool& s) {
  std::vector<IndexEntry> all;
  for (JobState st : {JobState::pending, JobState::failed}) {
    s.for_each_job(st, [&](std::string_view stem) {
      if (auto e = read_index_entry(s, st, std::string(stem), 0)) {
        all.push_back(*e);
      }
    });
  }
  std::sort(all.begin(), all.end(), runs_before);
  std::vector<std::string> ids;
  for (const IndexEntry& e : all) {
    ids.push_back(e.id);
  }
  return ids;
}

std::size_t index_lines(const fs::path& root) {
  std::ifstream in(root / "pending.index");
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
  }
  return n;
}

// A spool with 300 jobs enqueued in three batches of mixed priorities, 40 drop-ins
// (no line), stale lines, a torn line, and an id with two lines that both lie about its
// priority (an id used again: its file decides).
void fill(const fs::path& root, Spool& s) {
  JobOverrides o;
  for (int b = 0; b < 3; ++b) {
    std::string input;
    for (int i = 0; i < 100; ++i) {
      input += fmt::format(R"({{"command":"true","priority":{}}})", (i * 7 + b) % 5) + "\n";
    }
    enqueue_lines(s, input, o);
  }
  write_scrambled_jobs(root / "pending", 40);
  std::ofstream(root / "pending.index", std::ios::app) << "J 9 1 0 gone-long-ago\nJ 9 1 0 also-gone\nJ 4 12";
  std::ofstream(root / "pending.index", std::ios::app) << "\nJ 99 1 0 j7\nJ 98 1 0 j7\n"; // its file: priority 0
}

} // namespace

TEST_CASE("scan: pending.index orders what pending/ lists; the files it lacks are read; it is rewritten", "[index]") {
  TempDir t;
  Spool s = Spool::open(t.path());
  fill(t.path(), s);
  const std::vector<std::string> want = expected_order(s);
  REQUIRE(want.size() == 340);
  JobIndex ix(1000);
  const ScanStats st = scan_waiting(s, 0, now_micros(), ix);
  CHECK(st.pending == 340);
  CHECK(st.from_log == 300);
  CHECK(st.read == 40);
  CHECK(st.compacted);
  CHECK(drain(ix, now_micros()) == want);
  // Rewritten: one line per job listed, none stale; the next scan reads no file.
  CHECK(index_lines(t.path()) == 340);
  JobIndex again(1000);
  const ScanStats st2 = scan_waiting(s, 0, now_micros(), again);
  CHECK(st2.from_log == 340);
  CHECK(st2.read == 0);
  CHECK_FALSE(st2.compacted);
  CHECK(drain(again, now_micros()) == want);
}

TEST_CASE("scan: a small index drains a large spool in the exact order, scanning as it runs out", "[index]") {
  TempDir t;
  Spool s = Spool::open(t.path());
  fill(t.path(), s);
  const std::vector<std::string> want = expected_order(s);
  JobIndex ix(16);
  std::vector<std::string> got;
  int scans = 0;
  for (bool first = true; first || ix.needs_scan(now_micros()); first = false) {
    scan_waiting(s, 0, now_micros(), ix);
    ++scans;
    while (auto e = ix.pop_ready(now_micros())) {
      got.push_back(e->id);
      REQUIRE(s.dir(JobState::pending).remove(job_file(e->id))); // as its claim would
      if (got.size() == 100) {
        // A job that arrives mid-way and runs before everything left: kept at once.
        std::vector<Job> one{Job(Json{{"command", "true"}, {"id", "urgent"}, {"priority", 100}})};
        one[0].fill_new(JobDefaults(), now_micros());
        s.enqueue_batch(one);
        REQUIRE(ix.add(*read_index_entry(s, JobState::pending, "urgent", 0)));
      }
    }
  }
  std::vector<std::string> with_urgent = want;
  with_urgent.insert(with_urgent.begin() + 100, "urgent");
  CHECK(got == with_urgent);
  CHECK(scans >= 340 / 16);
  CHECK(files_in(t.path() / "pending") == 0);
}

TEST_CASE("index: saved and loaded (the supervisor's hand-over), it is the same index", "[index]") {
  JobIndex ix(3);
  for (int i : {5, 2, 9, 1, 7}) {
    ix.add(entry(fmt::format("j{}", i), i % 2, i));
  }
  IndexEntry f = entry("x y", 9, 3); // a drop-in's stem may hold a space
  f.from = JobState::failed;
  f.queue = "q.1";
  f.waits = true;
  ix.add(f);
  ix.add(entry("t1", 0, 1, 100));
  ix.add(entry("t2", 0, 1, 200));
  ix.add(entry("t3", 0, 1, 300));
  ix.add(entry("t4", 0, 1, 400)); // left out: the timers' cut
  std::string text;
  ix.save(text);
  JobIndex back(3);
  REQUIRE(back.load(text));
  CHECK(back.size() == ix.size());
  CHECK(back.truncated());
  CHECK(back.next_due() == ix.next_due());
  CHECK(back.left_out(entry("j8", 0, 8)) == ix.left_out(entry("j8", 0, 8)));
  CHECK(back.contains("x y", JobState::failed));
  const auto first = back.pop_ready(0);
  REQUIRE(first);
  CHECK((first->id == "x y" && first->queue == "q.1" && first->waits));
  ix.pop_ready(0);
  CHECK(drain(back, 350) == drain(ix, 350));
  CHECK(back.needs_scan(400) == ix.needs_scan(400));
  // Anything but a whole saved index loads nothing.
  JobIndex bad(3);
  CHECK_FALSE(bad.load(text.substr(0, text.size() - 4)));
  CHECK_FALSE(bad.load("queuectl-index 1\nE P 0 1 0\nend\n"));
  CHECK_FALSE(bad.load("queuectl-index 1\nE P 0 1 0 x\nend\n")); // the format of an older version
  CHECK_FALSE(bad.load(""));
  CHECK(bad.size() == 0);
}

TEST_CASE("index: two halves merged keep what one index of the whole keeps", "[index]") {
  JobIndex whole(50), a(50), b(50);
  for (int i = 0; i < 400; ++i) {
    const IndexEntry e = entry(fmt::format("j{:03}", (i * 37) % 400), i % 4, (i * 11) % 97, i % 9 == 0 ? 1000 + i : 0);
    whole.add(e);
    (i < 200 ? a : b).add(e);
  }
  a.merge(std::move(b));
  CHECK(a.size() == whole.size());
  CHECK(a.next_due() == whole.next_due());
  CHECK(drain(a, 0) == drain(whole, 0));
  CHECK(a.needs_scan(0) == whole.needs_scan(0));
  CHECK(drain(a, 5000) == drain(whole, 5000));
}

TEST_CASE("index: loaded into a smaller index, the cut is the smaller index's own", "[index]") {
  JobIndex big(10);
  for (int i = 0; i < 20; ++i) {
    big.add(entry(fmt::format("j{:02}", i), 0, i));
  }
  std::string text;
  big.save(text);
  JobIndex small(4);
  REQUIRE(small.load(text));
  CHECK(small.size() == 4);
  CHECK(small.left_out(entry("j04", 0, 4))); // left out by the smaller index, not after j10
  CHECK(drain(small, 0) == std::vector<std::string>{"j00", "j01", "j02", "j03"});
  CHECK(small.needs_scan(0));
}
