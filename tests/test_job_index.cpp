#include "queuectl/job_index.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace queuectl;

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

TEST_CASE("snapshot: a worker's index filled from it is the index it was taken from", "[index]") {
  IndexSnapshot snap;
  JobIndex direct;
  for (int i = 0; i < 20'000; ++i) { // past the first buffers: they grow
    IndexEntry e = entry(fmt::format("{:0>{}}", i, 1 + i % 128), i % 7 - 3, 1000 - i % 1000, i % 5 == 0 ? 50 : 0);
    e.from = i % 3 == 0 ? JobState::failed : JobState::pending;
    snap.add(e);
    direct.add(e);
  }
  CHECK(snap.size() == 20'000);
  JobIndex filled;
  snap.fill(filled);
  CHECK(filled.size() == 20'000);
  CHECK(filled.next_due() == direct.next_due());
  for (;;) {
    const auto a = filled.pop_ready(100);
    const auto b = direct.pop_ready(100);
    REQUIRE(a.has_value() == b.has_value());
    if (!a) {
      break;
    }
    REQUIRE(a->id == b->id);
    REQUIRE(a->from == b->from);
    REQUIRE(a->priority == b->priority);
    REQUIRE(a->created == b->created);
    REQUIRE(a->due == b->due);
  }
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
