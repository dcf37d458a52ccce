#include "queuectl/enqueue.hpp"
#include "queuectl/lifecycle.hpp"
#include "queuectl/sys.hpp"

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

using namespace queuectl;
namespace fs = std::filesystem;

namespace {

std::string add(Spool& s, const std::string& json) { return enqueue_one(s, Job::parse(json).json(), {}); }

// The job file's content as it is on disk (not as Spool's readers present it).
Json raw(const Spool& s, JobState st, const std::string& id) {
  return Json::parse(sys::read_file_at(s.dir(st), job_file(id), id).value_or("null"));
}

IndexEntry entry_for(const Spool& s, const std::string& id, JobState from = JobState::pending) {
  const auto text = sys::read_file_at(s.dir(from), job_file(id), id);
  return index_entry(id, from, text.value_or(""), 0, 0);
}

} // namespace

TEST_CASE("backoff: base ^ attempts, capped", "[lifecycle]") {
  CHECK(backoff_seconds(1, 2, 3600) == 2);
  CHECK(backoff_seconds(3, 2, 3600) == 8);
  CHECK(backoff_seconds(20, 2, 3600) == 3600);
  CHECK(backoff_seconds(100000, 10, 60) == 60);
  CHECK(backoff_seconds(5, 1, 3600) == 1);
}

TEST_CASE("record_run: done, failed with next_run_at, then dead", "[lifecycle]") {
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

TEST_CASE("claim_job: exactly one of two claimers wins", "[lifecycle]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const std::string id = add(s, R"({"command":"true"})");
  const IndexEntry e = entry_for(s, id);
  std::optional<Claim> a;
  std::optional<Claim> b;
  Micros due = 0;
  CHECK(claim_job(s, Config(), e, now_micros(), a, &due) == ClaimOutcome::claimed);
  CHECK(claim_job(s, Config(), e, now_micros(), b, &due) == ClaimOutcome::gone);
  REQUIRE(a);
  CHECK(a->job.attempts() == 1);
  CHECK(s.find(id) == JobState::processing);
  // The file keeps its pending/ content until the run lasts; being in processing/ is
  // what records the run, and readers count it.
  CHECK(raw(s, JobState::processing, id)["attempts"] == 0);
  CHECK(raw(s, JobState::processing, id)["state"] == "pending");
  CHECK(s.load(id).job.attempts() == 1);
  CHECK(s.list(JobState::processing).at(0).job.attempts() == 1);
  s.commit_rewrite(a->locked, a->staged, false);
  CHECK(raw(s, JobState::processing, id)["attempts"] == 1);
  CHECK(raw(s, JobState::processing, id)["state"] == "processing");
  CHECK(s.load(id).job.attempts() == 1); // counted once, not again
}

TEST_CASE("claim_job: a staged rewrite that is discarded leaves nothing behind", "[lifecycle]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const std::string id = add(s, R"({"command":"true"})");
  std::optional<Claim> c;
  Micros due = 0;
  REQUIRE(claim_job(s, Config(), entry_for(s, id), now_micros(), c, &due) == ClaimOutcome::claimed);
  CHECK(std::distance(fs::directory_iterator(dir.path() / "processing"), fs::directory_iterator()) == 2);
  s.discard_rewrite(c->staged);
  CHECK(std::distance(fs::directory_iterator(dir.path() / "processing"), fs::directory_iterator()) == 1);
  s.move(c->locked, JobState::completed, c->job, true);
  CHECK(s.load(id).job.attempts() == 1);
  CHECK(raw(s, JobState::completed, id)["attempts"] == 1);
}

TEST_CASE("claim_job: a job that is not due yet stays", "[lifecycle]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  const std::string id = add(s, R"({"command":"true","run_at":"2999-01-01T00:00:00Z"})");
  IndexEntry e = entry_for(s, id);
  e.due = 0; // a stale index
  std::optional<Claim> c;
  Micros due = 0;
  CHECK(claim_job(s, Config(), e, now_micros(), c, &due) == ClaimOutcome::not_due);
  CHECK(due == parse_time("2999-01-01T00:00:00Z"));
  CHECK(s.find(id) == JobState::pending);
}

TEST_CASE("claim_job: invalid drop-ins go to dead/ with why", "[lifecycle]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  std::optional<Claim> c;
  Micros due = 0;
  SECTION("id differs from the file name") {
    std::ofstream(dir.path() / "pending" / "a.json") << R"({"command":"true","id":"b"})";
    CHECK(claim_job(s, Config(), entry_for(s, "a"), now_micros(), c, &due) == ClaimOutcome::quarantined);
    CHECK_THAT(s.load("a").job.json()["last_error"].get<std::string>(), Catch::Contains("differs"));
    CHECK(fs::exists(dir.path() / "dead" / "a.json.orig"));
  }
  SECTION("an id that exists in done/") {
    std::ofstream(dir.path() / "done" / "d.json") << R"({"command":"true","id":"d"})";
    std::ofstream(dir.path() / "pending" / "d.json") << R"({"command":"echo again"})";
    CHECK(claim_job(s, Config(), entry_for(s, "d"), now_micros(), c, &due) == ClaimOutcome::quarantined);
    CHECK(fs::exists(dir.path() / "done" / "d.json"));
    CHECK(fs::exists(dir.path() / "dead" / "d.json.orig"));
    // The record needs an id of its own: "d" is taken by the completed job.
    CHECK(s.counts()[static_cast<int>(JobState::dead)] == 1);
  }
  SECTION("a minimal drop-in gets the spool's defaults") {
    Config cfg;
    cfg.set("max-retries", "7");
    std::ofstream(dir.path() / "pending" / "m.json") << R"({"command":"true"})";
    CHECK(claim_job(s, cfg, entry_for(s, "m"), now_micros(), c, &due) == ClaimOutcome::claimed);
    s.commit_rewrite(c->locked, c->staged, false);
    const StoredJob sj = s.load("m");
    const Json& j = sj.job.json();
    CHECK(j["id"] == "m");
    CHECK(j["max_retries"] == 7);
    CHECK(j["attempts"] == 1);
    CHECK(j["created_at"].is_string());
  }
}

TEST_CASE("recover_abandoned: a processing job whose lock is free", "[lifecycle]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  SECTION("counts as a failed attempt and retries") {
    std::ofstream(dir.path() / "processing" / "r.json")
        << R"({"command":"true","id":"r","state":"processing","attempts":1,"max_retries":3})";
    const auto rec = recover_abandoned(s);
    REQUIRE(rec.size() == 1);
    CHECK(rec[0].to == JobState::failed);
    const StoredJob sj = s.load("r");
    const Json& j = sj.job.json();
    CHECK(j["last_error"] == "worker died");
    CHECK(j["attempts"] == 1);
    CHECK(j["next_run_at"].is_string());
  }
  SECTION("a claimed file whose run was not written yet: the run is counted once") {
    std::ofstream(dir.path() / "processing" / "r.json")
        << R"({"command":"true","id":"r","state":"failed","attempts":1,"max_retries":3})";
    std::ofstream(dir.path() / "processing" / "m.json") << R"({"command":"true"})"; // a drop-in
    CHECK(recover_abandoned(s).size() == 2);
    CHECK(s.load("r").job.attempts() == 2);
    CHECK(s.load("r").job.json()["last_error"] == "worker died");
    const StoredJob m = s.load("m");
    CHECK(m.state == JobState::failed);
    CHECK(m.job.attempts() == 1);
    CHECK(m.job.json()["id"] == "m");
    CHECK(m.job.json()["created_at"].is_string());
    CHECK(m.job.json()["max_retries"] == 3);
  }
  SECTION("out of retries: dead") {
    std::ofstream(dir.path() / "processing" / "r.json") << R"({"command":"true","id":"r","attempts":4,"max_retries":3})";
    recover_abandoned(s);
    CHECK(s.find("r") == JobState::dead);
  }
  SECTION("a locked job (its command still runs) is left alone") {
    std::ofstream(dir.path() / "processing" / "r.json") << R"({"command":"true","id":"r","attempts":1})";
    const pid_t child = ::fork();
    if (child == 0) {
      const int fd = ::open((dir.path() / "processing" / "r.json").c_str(), O_RDONLY);
      ::flock(fd, LOCK_EX);
      ::pause();
      ::_exit(0);
    }
    // Wait until the child holds the lock (a deadline, not a guess).
    const Micros deadline = now_micros() + 10'000'000;
    for (;;) {
      Fd fd(::open((dir.path() / "processing" / "r.json").c_str(), O_RDONLY | O_CLOEXEC));
      if (!sys::try_lock(fd.get(), true) || now_micros() > deadline) {
        break;
      }
      fd.reset();
      ::usleep(1000);
    }
    CHECK(recover_abandoned(s).empty());
    CHECK(s.find("r") == JobState::processing);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    CHECK(recover_abandoned(s).size() == 1);
    CHECK(s.find("r") == JobState::failed);
  }
  SECTION("a stale copy of a job already done is removed") {
    std::ofstream(dir.path() / "processing" / "r.json") << R"({"command":"true","id":"r"})";
    std::ofstream(dir.path() / "done" / "r.json") << R"({"command":"true","id":"r","exit_code":0})";
    CHECK(recover_abandoned(s).empty());
    CHECK_FALSE(fs::exists(dir.path() / "processing" / "r.json"));
    CHECK(s.find("r") == JobState::completed);
  }
  SECTION("a symlink is never opened or moved") {
    fs::create_symlink("/etc/hostname", dir.path() / "processing" / "l.json");
    CHECK(recover_abandoned(s).empty());
    CHECK(fs::is_symlink(dir.path() / "processing" / "l.json"));
  }
}
