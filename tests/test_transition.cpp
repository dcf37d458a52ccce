#include "queuectl/commands.hpp"
#include "queuectl/job_index.hpp"
#include "queuectl/transition.hpp"
#include "support/spool_util.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

using namespace queuectl;
using namespace queuectl::test;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

ino_t inode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_ino;
}

Claimed claim_now(Transitions& tx, const std::string& id, JobState from = JobState::pending) {
  ClaimResult r = tx.claim(from, id, Config(), now_micros());
  REQUIRE(r.status == ClaimResult::claimed);
  return std::move(*r.job);
}

// Runs the outcome through a committer's own Transitions, as the worker does.
JobState finish(const Spool& s, Transitions& tx, Claimed c, const RunResult& r) {
  Outcome o = tx.conclude(std::move(c), r, Config(), now_micros());
  Transitions committer(s);
  committer.commit(o);
  committer.sync(o.to);
  return o.to;
}

// A child process that holds a lock on `path` until killed (as an orphaned command does).
pid_t hold_lock(const fs::path& path) {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    ::flock(fd, LOCK_EX);
    (void)!::write(ready[1], "x", 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  return child;
}

void end(pid_t child) {
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

} // namespace

TEST_CASE("backoff: base ^ attempts, capped", "[transition]") {
  CHECK(backoff_seconds(1, 2, 3600) == 2);
  CHECK(backoff_seconds(3, 2, 3600) == 8);
  CHECK(backoff_seconds(20, 2, 3600) == 3600);
  CHECK(backoff_seconds(100000, 10, 60) == 60);
  CHECK(backoff_seconds(5, 1, 3600) == 1);
}

TEST_CASE("record_run: done, failed with next_run_at, then dead", "[transition]") {
  Config cfg;
  Job j = Job::parse(R"({"command":"x","max_retries":1,"attempts":1})");
  CHECK(record_run(j, RunResult{0, ""}, cfg, 0) == JobState::completed);
  CHECK(j.json()["exit_code"] == 0);
  CHECK(j.json()["last_error"].is_null());

  CHECK(record_run(j, RunResult{3, "exit status 3"}, cfg, 1'000'000) == JobState::failed);
  CHECK(j.json()["next_run_at"] == format_time(3'000'000)); // now + 2^1 s
  CHECK(j.json()["exit_code"] == 3);
  CHECK(j.json()["last_error"] == "exit status 3");

  Config far;
  far.set("backoff-base", "1e300"); // a due time past what RFC 3339 can write: the latest
  far.set("backoff-max", "1e300");
  CHECK(record_run(j, RunResult{3, "exit status 3"}, far, 1'000'000) == JobState::failed);
  CHECK(j.json()["next_run_at"] == format_time(k_latest_time));

  j.json()["attempts"] = 2; // the second run: out of retries (max_retries + 1 runs)
  CHECK(record_run(j, RunResult{3, "exit status 3"}, cfg, 0) == JobState::dead);
  CHECK_FALSE(j.json().contains("next_run_at"));
}

TEST_CASE("claim: exactly one of two claimers wins; the run counts from the rename", "[transition]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const std::string id = enqueue_cmd(s, "true");
  Transitions a(s);
  Transitions b(s);
  Claimed c = claim_now(a, id);
  CHECK(b.claim(JobState::pending, id, Config(), now_micros()).status == ClaimResult::gone);
  CHECK(c.job().attempts() == 1);
  CHECK(s.find(id) == JobState::processing);
  // The file keeps its pending/ content until the run lasts; being in processing/ is
  // what records the run, and readers count it.
  CHECK(raw(s, JobState::processing, id)["attempts"] == 0);
  CHECK(raw(s, JobState::processing, id)["state"] == "pending");
  CHECK(s.load(id).job.attempts() == 1);
  CHECK(s.list(JobState::processing).at(0).job.attempts() == 1);
  a.record_start(c);
  CHECK(raw(s, JobState::processing, id)["attempts"] == 1);
  CHECK(raw(s, JobState::processing, id)["state"] == "processing");
  CHECK(s.load(id).job.attempts() == 1); // counted once, not again
  // Both files the command may inherit are locked.
  CHECK_FALSE(s.lock_job(JobState::processing, id));
  CHECK(c.inherit_fds().size() == 1); // the start record is in place: one file holds the name
}

TEST_CASE("commit: the outcome's content is in place before the file arrives", "[transition]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  Transitions tx(s);
  const std::string ok = enqueue_cmd(s, "true", "ok");
  const std::string bad = enqueue_cmd(s, "false", "bad");
  CHECK(finish(s, tx, claim_now(tx, ok), RunResult{0, ""}) == JobState::completed);
  Json j = raw(s, JobState::completed, ok);
  CHECK(j["state"] == "completed");
  CHECK(j["exit_code"] == 0);
  CHECK(j["attempts"] == 1);
  CHECK(j["last_error"].is_null());
  CHECK(finish(s, tx, claim_now(tx, bad), RunResult{1, "exit status 1"}) == JobState::failed);
  j = raw(s, JobState::failed, bad);
  CHECK(j["state"] == "failed");
  CHECK(j["exit_code"] == 1);
  CHECK(j["next_run_at"].is_string());
  CHECK(files_in(dir.path() / "processing") == 0);
  SECTION("a crash after the content is written, before the move: recovery finishes the move") {
    const std::string id = enqueue_cmd(s, "true", "cut");
    Claimed c = claim_now(tx, id);
    Outcome o = tx.conclude(std::move(c), RunResult{0, ""}, Config(), now_micros());
    // What commit() writes first, left in processing/ with the lock dropped.
    Job content = o.job;
    write(dir.path() / "processing" / "cut.json", content.dump());
    o = Outcome{}; // the process dies: every lock goes
    const auto rec = Transitions(s).recover("worker died");
    REQUIRE(rec.size() == 1);
    CHECK(rec[0].to == JobState::completed);
    CHECK(raw(s, JobState::completed, id)["attempts"] == 1);  // the run counted once
    CHECK(raw(s, JobState::completed, id)["exit_code"] == 0); // its outcome kept
  }
}

TEST_CASE("claim: not due, requeue from failed/, and a move cut short in pending/", "[transition]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  Transitions tx(s);
  SECTION("a job that is not due yet stays") {
    const std::string id =
        enqueue_one(s, Job::parse(R"({"command":"true","run_at":"2999-01-01T00:00:00Z"})").json(), {});
    const ClaimResult r = tx.claim(JobState::pending, id, Config(), now_micros());
    CHECK(r.status == ClaimResult::not_due);
    CHECK(r.due == parse_time("2999-01-01T00:00:00Z"));
    CHECK(s.find(id) == JobState::pending);
  }
  SECTION("a failed job is claimed through pending/: the claimed content says pending") {
    const std::string id = enqueue_cmd(s, "false", "f");
    CHECK(finish(s, tx, claim_now(tx, id), RunResult{1, "exit status 1"}) == JobState::failed);
    CHECK(tx.claim(JobState::failed, id, Config(), now_micros()).status == ClaimResult::not_due);
    Json j = raw(s, JobState::failed, id);
    j["next_run_at"] = format_time(now_micros() - 1'000'000);
    write(dir.path() / "failed" / "f.json", j.dump());
    Claimed c = claim_now(tx, id, JobState::failed);
    CHECK(c.job().attempts() == 2);
    const Json claimed = raw(s, JobState::processing, id);
    CHECK(claimed["state"] == "pending");
    CHECK_FALSE(claimed.contains("next_run_at"));
    CHECK(claimed["last_error"] == "exit status 1"); // kept until this run ends
    CHECK(s.load(id).job.attempts() == 2);
  }
  SECTION("content of a final state in pending/ goes to its directory unchanged") {
    const std::string text =
        R"({"id":"x","command":"true","state":"dead","attempts":4,"last_error":"cancelled","created_at":"2026-01-01T00:00:00Z"})"
        "\n";
    write(dir.path() / "pending" / "x.json", text);
    CHECK(tx.claim(JobState::pending, "x", Config(), now_micros()).status == ClaimResult::resolved);
    CHECK(read(dir.path() / "dead" / "x.json") == text);
    const std::string failed =
        R"({"id":"y","command":"true","state":"failed","attempts":1,"created_at":"2026-01-01T00:00:00Z","next_run_at":"2026-01-01T00:00:02Z","last_error":"exit status 1"})";
    write(dir.path() / "pending" / "y.json", failed);
    CHECK(tx.claim(JobState::pending, "y", Config(), now_micros()).status == ClaimResult::resolved);
    CHECK(read(dir.path() / "failed" / "y.json") == failed);
  }
  SECTION("a drop-in saying it is dead is not a job file of ours: quarantined") {
    write(dir.path() / "pending" / "z.json", R"({"command":"true","state":"dead"})");
    CHECK(tx.claim(JobState::pending, "z", Config(), now_micros()).status == ClaimResult::quarantined);
    CHECK(fs::exists(dir.path() / "dead" / "z.json.orig"));
  }
}

TEST_CASE("quarantine: every kind of bad drop-in, record first, fields kept", "[transition]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  Transitions tx(s);
  const auto drop = [&](const std::string& name, const std::string& text) {
    write(dir.path() / "pending" / name, text);
    const ClaimResult r = tx.claim(JobState::pending, name.substr(0, name.size() - 5), Config(), now_micros());
    CHECK(r.status == ClaimResult::quarantined);
    CHECK(read(dir.path() / "dead" / (name + ".orig")) == text); // byte for byte
    return r.note;
  };
  const auto record = [&](const std::string& id) { return s.load(id).job.json(); };
  SECTION("syntax") {
    CHECK_THAT(drop("a.json", "{not json"), Catch::Contains("invalid JSON"));
    CHECK(record("a")["original_file"] == "a.json.orig");
    CHECK(record("a")["state"] == "dead");
    CHECK_THAT(drop("b.json", "[1]"), Catch::Contains("not array"));
    CHECK_THAT(drop("n.json", std::string("{\"command\":\"true\"}\0\0\0", 21)), Catch::Contains("NUL"));
    CHECK_THAT(drop("t.json", R"({"command":"true"} x)"), Catch::Contains("invalid JSON"));
  }
  SECTION("a number out of range keeps the other fields") {
    CHECK_THAT(drop("p.json", R"({"command":"true","priority":1e400,"x-note":"kept"})"), Catch::Contains("1e400"));
    CHECK(record("p")["x-note"] == "kept");
    CHECK(record("p")["command"] == "true");
    CHECK_FALSE(record("p").contains("priority"));
  }
  SECTION("too deep, however deep, without a crash") {
    std::string deep = R"({"command":"true","x":)" + std::string(100'000, '[') + std::string(100'000, ']') + "}";
    CHECK_THAT(drop("d.json", deep), Catch::Contains("deeper than 64"));
    CHECK(record("d")["command"] == "true"); // the shallow member is kept
    CHECK_FALSE(record("d").contains("x"));
    std::string ok = R"({"command":"true","x":)" + std::string(63, '[') + std::string(63, ']') + "}";
    write(dir.path() / "pending" / "ok.json", ok); // 64 levels in all: fine
    CHECK(tx.claim(JobState::pending, "ok", Config(), now_micros()).status == ClaimResult::claimed);
  }
  SECTION("bad fields, a different id, an id taken elsewhere") {
    CHECK_THAT(drop("f.json", R"({"command":"true","priority":"high","x":1})"), Catch::Contains("priority"));
    CHECK(record("f")["priority"] == "high");
    CHECK_THAT(drop("g.json", R"({"command":"true","id":"other"})"), Catch::Contains("differs"));
    write(dir.path() / "done" / "h.json", R"({"command":"true","id":"h"})");
    CHECK_THAT(drop("h.json", R"({"command":"echo again"})"), Catch::Contains("already exists in done/"));
    CHECK(fs::exists(dir.path() / "done" / "h.json"));
    CHECK_THAT(drop("k.json", R"({"command":"true","attempts":3})"), Catch::Contains("attempts"));
  }
  SECTION("a file name that is not an id: a record under a generated id") {
    const std::string name = "bad name!.json";
    CHECK_THAT(drop(name, R"({"command":"true","x":1})"), Catch::Contains("not a valid job id"));
    const auto dead = s.list(JobState::dead);
    REQUIRE(dead.size() == 1);
    const Json& j = dead[0].job.json();
    CHECK(valid_id(j["id"].get<std::string>()));
    CHECK(j["original_file"] == name + ".orig");
    CHECK(j["x"] == 1);
  }
  SECTION("a record written before a crash cut the quarantine short is used again") {
    write(dir.path() / "pending" / "r.json", "{oops");
    write(dir.path() / "dead" / "r.json", R"({"id":"r","command":"x","state":"dead","original_file":"r.json.orig"})");
    CHECK(tx.claim(JobState::pending, "r", Config(), now_micros()).status == ClaimResult::quarantined);
    CHECK(read(dir.path() / "dead" / "r.json.orig") == "{oops");
    CHECK(files_in(dir.path() / "dead") == 2); // no second record
  }
  CHECK(files_in(dir.path() / "pending") == 0);
  CHECK(files_in(dir.path() / "tmp") <= 2); // this Transitions' spare and ready log at most
}

TEST_CASE("recover: a processing job whose lock is free", "[transition]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  Transitions tx(s);
  const fs::path p = dir.path() / "processing";
  SECTION("its start was written: a failed attempt, retried") {
    write(
        p / "r.json",
        R"({"command":"true","id":"r","state":"processing","attempts":1,"max_retries":3,"created_at":"2026-01-01T00:00:00Z"})");
    const auto rec = tx.recover("worker died");
    REQUIRE(rec.size() == 1);
    CHECK(rec[0].to == JobState::failed);
    const Json j = raw(s, JobState::failed, "r");
    CHECK(j["state"] == "failed");
    CHECK(j["last_error"] == "worker died");
    CHECK(j["attempts"] == 1);
    CHECK(j["next_run_at"].is_string());
  }
  SECTION("claimed, its start not written: the run is counted once; a drop-in gets defaults") {
    write(
        p / "r.json",
        R"({"command":"true","id":"r","state":"pending","attempts":1,"max_retries":3,"created_at":"2026-01-01T00:00:00Z"})");
    write(p / "m.json", R"({"command":"true"})");
    CHECK(tx.recover("worker died").size() == 2);
    CHECK(raw(s, JobState::failed, "r")["attempts"] == 2);
    const Json m = raw(s, JobState::failed, "m");
    CHECK(m["attempts"] == 1);
    CHECK(m["id"] == "m");
    CHECK(m["created_at"].is_string());
    CHECK(m["max_retries"] == 3);
  }
  SECTION("out of retries: dead") {
    write(
        p / "r.json",
        R"({"command":"true","id":"r","state":"processing","attempts":4,"max_retries":3,"created_at":"2026-01-01T00:00:00Z"})");
    tx.recover("worker died");
    CHECK(raw(s, JobState::dead, "r")["state"] == "dead");
  }
  SECTION("a locked job (its command still runs) is left alone, then recovered") {
    write(p / "r.json",
          R"({"command":"true","id":"r","state":"processing","attempts":1,"created_at":"2026-01-01T00:00:00Z"})");
    const pid_t child = hold_lock(p / "r.json");
    std::vector<std::string> held;
    CHECK(tx.recover("worker died", &held).empty());
    CHECK(held == std::vector<std::string>{"r"});
    CHECK(s.find("r") == JobState::processing);
    end(child);
    CHECK(tx.recover("worker died").size() == 1);
    CHECK(s.find("r") == JobState::failed);
  }
  SECTION("a lock won by waiting is adopted") {
    write(p / "r.json",
          R"({"command":"true","id":"r","state":"processing","attempts":1,"created_at":"2026-01-01T00:00:00Z"})");
    Fd fd(::open((p / "r.json").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(sys::try_lock(fd.get(), true));
    auto l = s.adopt_lock(JobState::processing, "r", std::move(fd));
    REQUIRE(l);
    CHECK(tx.recover_locked(std::move(*l), "worker died")->to == JobState::failed);
  }
  SECTION("invalid content is quarantined; a symlink is never opened or moved") {
    write(p / "bad.json", "{nope");
    fs::create_symlink("/etc/hostname", p / "l.json");
    const auto rec = tx.recover("worker died");
    REQUIRE(rec.size() == 1);
    CHECK(rec[0].to == JobState::dead);
    CHECK(fs::is_symlink(p / "l.json"));
    CHECK(fs::exists(dir.path() / "dead" / "bad.json.orig"));
  }
}

TEST_CASE("cancel and retry: content final in dead/, through pending/", "[transition]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  Transitions tx(s);
  const std::string id = enqueue_cmd(s, "true", "c1");
  tx.cancel(id);
  Json j = raw(s, JobState::dead, id);
  CHECK(j["state"] == "dead");
  CHECK(j["last_error"] == "cancelled");
  CHECK(code_of([&] { tx.cancel(id); }) == Exit::failure);
  tx.retry(id, true);
  j = raw(s, JobState::pending, id);
  CHECK(j["state"] == "pending");
  CHECK(j["attempts"] == 0);
  CHECK(j["last_error"] == "cancelled"); // kept until the next run
  CHECK(code_of([&] { tx.retry(id, false); }) == Exit::failure);
  // A failed job: failed/ and dead/ are both final, so it passes through pending/.
  const std::string f = enqueue_cmd(s, "false", "f1");
  CHECK(finish(s, tx, claim_now(tx, f), RunResult{1, "exit status 1"}) == JobState::failed);
  tx.cancel(f);
  j = raw(s, JobState::dead, f);
  CHECK(j["state"] == "dead");
  CHECK(j["last_error"] == "cancelled");
  CHECK_FALSE(j.contains("next_run_at"));
  CHECK(files_in(dir.path() / "pending") == 1); // c1 only
  std::ofstream(dir.path() / "dead" / "f1.log") << "output\n";
  CHECK(cmd::purge(s, JobState::dead, 3600.0) == 0); // too young
  CHECK(cmd::purge(s, JobState::dead, std::nullopt) == 1);
  CHECK(files_in(dir.path() / "dead") == 0);
  CHECK(code_of([&] { tx.cancel("nosuch"); }) == Exit::failure);
}

TEST_CASE("spare: a rewrite swaps inodes instead of creating and freeing them", "[transition]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const fs::path tmp = dir.path() / "tmp";
  std::optional<Transitions> tx(std::in_place, s);
  const auto spares = [&] {
    std::vector<fs::path> v;
    for (const auto& e : fs::directory_iterator(tmp)) {
      if (e.path().string().find(".spare") != std::string::npos) {
        v.push_back(e.path());
      }
    }
    return v;
  };
  // a runs long enough for its start record: a's claimed inode becomes the spare.
  enqueue_cmd(s, std::string(3000, 'x'), "a");
  const ino_t a_pending = inode_of(dir.path() / "pending" / "a.json");
  Claimed a = claim_now(*tx, "a");
  Fd command_copy(::dup(a.inherit_fds()[0])); // what the command inherits: the same lock
  tx->record_start(a);
  REQUIRE(spares().size() == 1);
  CHECK(inode_of(spares()[0]) == a_pending);
  CHECK(s.load("a").job.command() == std::string(3000, 'x'));
  finish(s, *tx, std::move(a), RunResult{0, ""});
  enqueue_cmd(s, "true", "b");
  SECTION("a spare nobody else holds is filled again, with no stale bytes") {
    command_copy.reset(); // the command exited
    Claimed b = claim_now(*tx, "b");
    tx->record_start(b);
    CHECK(inode_of(dir.path() / "processing" / "b.json") == a_pending);
    CHECK(s.load("b").job.command() == "true"); // would not parse with a's bytes after it
  }
  SECTION("a spare a command still holds is dropped, not reused") {
    Claimed b = claim_now(*tx, "b");
    tx->record_start(b);
    CHECK(inode_of(dir.path() / "processing" / "b.json") != a_pending);
    CHECK(s.load("b").job.command() == "true");
    for (const fs::path& p : spares()) {
      CHECK(inode_of(p) != a_pending);
    }
  }
  SECTION("the spare is removed with its owner") {
    tx.reset();
    CHECK(files_in(tmp) == 0);
  }
}

TEST_CASE("sweep_tmp: leftovers of dead processes go, what is held or fresh stays", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const fs::path tmp = dir.path() / "tmp";
  const pid_t dead = ::fork();
  if (dead == 0) {
    ::_exit(0);
  }
  ::waitpid(dead, nullptr, 0);
  const std::string mine = s.temp_name("spare");
  write(tmp / mine, "x");
  const std::string gone = fmt::format(".queuectl.{}.0.spare", dead); // its process is gone
  const std::string held = fmt::format(".queuectl.{}.1.log", dead);   // the same, but held
  write(tmp / gone, "x");
  write(tmp / held, "x");
  const pid_t holder = hold_lock(tmp / held);
  write(tmp / "writer.partial", "x"); // a drop-in being written
  write(tmp / "old.partial", "x");    // one abandoned long ago
  const struct timespec old[2] = {{0, UTIME_OMIT}, {::time(nullptr) - 3600, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (tmp / "old.partial").c_str(), old, 0) == 0);
  s.sweep_tmp();
  CHECK(fs::exists(tmp / mine));
  CHECK_FALSE(fs::exists(tmp / gone));
  CHECK(fs::exists(tmp / held));
  CHECK(fs::exists(tmp / "writer.partial"));
  CHECK_FALSE(fs::exists(tmp / "old.partial"));
  end(holder);
  s.sweep_tmp();
  CHECK_FALSE(fs::exists(tmp / held));
}

TEST_CASE("sweep_tmp: a live process's temporaries stay however old their content", "[spool]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const fs::path tmp = dir.path() / "tmp";
  auto set_mtime = [&](const std::string& name, std::time_t t) {
    const struct timespec times[2] = {{0, UTIME_OMIT}, {t, 0}};
    REQUIRE(::utimensat(AT_FDCWD, (tmp / name).c_str(), times, 0) == 0);
  };
  // A bulk enqueue that has been writing since just after its process started, long ago
  // (pid 1 stands for it: alive, and started before the file was written).
  const std::string batch = ".queuectl.1.7.new";
  write(tmp / batch, "x");
  // A worker's spare that is a job's old inode, swapped in by RENAME_EXCHANGE just now: its
  // content (mtime) is an hour older than its owner, a process started now.
  write(dir.path() / "unrelated", "");
  const pid_t writer = hold_lock(dir.path() / "unrelated");
  const std::string swapped = fmt::format(".queuectl.{}.8.spare", writer);
  write(tmp / swapped, "x");
  set_mtime(swapped, ::time(nullptr) - 3600);
  const std::string fresh = fmt::format(".queuectl.{}.9.new", writer); // its own, just written
  write(tmp / fresh, "x");
  s.sweep_tmp();
  CHECK(fs::exists(tmp / batch));
  CHECK(fs::exists(tmp / swapped));
  CHECK(fs::exists(tmp / fresh));
  end(writer);
  s.sweep_tmp(); // its owner is gone now
  CHECK_FALSE(fs::exists(tmp / swapped));
  CHECK_FALSE(fs::exists(tmp / fresh));
  CHECK(fs::exists(tmp / batch));
}

TEST_CASE("temp_owner_gone: a dead owner, or a pid reused after the file last changed", "[spool]") {
  const Micros changed = 1'700'000'000'000'000;
  CHECK(temp_owner_gone(std::nullopt, changed));
  CHECK_FALSE(temp_owner_gone(changed - 3'600'000'000, changed)); // started an hour before
  CHECK_FALSE(temp_owner_gone(changed + 1'000'000, changed));     // within the slack
  CHECK(temp_owner_gone(changed + 3'000'000, changed));           // another process since
}

TEST_CASE("hold and release: final on arrival in held/; a hold cut short in pending/ is finished", "[transition]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const std::string id = enqueue_cmd(s, "true");
  Transitions tx(s);
  tx.hold(id);
  CHECK(s.find(id) == JobState::held);
  CHECK(raw(s, JobState::held, id)["state"] == "held");
  CHECK(code_of([&] { tx.hold(id); }) == Exit::failure);
  // A claim never takes a held job; a file in pending/ that says "held" (a hold cut short
  // by a crash between its rewrite and its move) is moved on to held/, not run.
  tx.release(id);
  CHECK(s.find(id) == JobState::pending);
  CHECK(raw(s, JobState::pending, id)["state"] == "pending");
  CHECK(code_of([&] { tx.release(id); }) == Exit::failure);
  Json j = raw(s, JobState::pending, id);
  j["state"] = "held";
  write(dir.path() / "pending" / job_file(id), j.dump());
  CHECK(tx.claim(JobState::pending, id, Config(), now_micros()).status == ClaimResult::resolved);
  CHECK(s.find(id) == JobState::held);
}

TEST_CASE("claim: after a job not completed, blocked; after a dead one, moved to dead/ naming it", "[transition]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const std::string dep = enqueue_cmd(s, "true", std::string("dep"));
  JobOverrides o;
  o.command = "true";
  o.after = {dep};
  const std::string waiting = enqueue_one(s, Json(), o);
  Transitions tx(s);
  ClaimResult r = tx.claim(JobState::pending, waiting, Config(), now_micros());
  CHECK(r.status == ClaimResult::blocked);
  CHECK(r.note == dep);
  CHECK(s.find(waiting) == JobState::pending); // left as it was
  CHECK(raw(s, JobState::pending, waiting)["attempts"] == 0);
  tx.cancel(dep);
  r = tx.claim(JobState::pending, waiting, Config(), now_micros());
  CHECK(r.status == ClaimResult::dependency_failed);
  CHECK(s.find(waiting) == JobState::dead);
  CHECK(raw(s, JobState::dead, waiting)["state"] == "dead");
  CHECK(raw(s, JobState::dead, waiting)["last_error"] == "dependency dep failed");
  // A job that is nowhere (purged once completed) counts as completed.
  o.after = {"gone"};
  Job j = make_job(Json(), o, JobDefaults(), now_micros());
  std::vector<Job> one{j};
  s.enqueue_batch(one);
  CHECK(tx.claim(JobState::pending, j.id(), Config(), now_micros()).status == ClaimResult::claimed);
}
