// The worker's parts on their own, the way ninja tests its Subprocess: a running job's
// clock (timeout -> SIGTERM -> SIGKILL, stop-now), the committer's groups, and a whole
// Worker in a child process of the test, stopped gently and at once.
#include "queuectl/commands.hpp"
#include "queuectl/process.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/worker.hpp"
#include "support/spool_util.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

using namespace queuectl;
using namespace queuectl::test;
namespace fs = std::filesystem;

namespace {

constexpr Micros k_ms = 1000;

struct Ended {
  RunResult result;
  Micros after = 0; // since the start
};

// Drives the job's clock as the worker's loop does, until its command exits (at most 20 s).
Ended drive(RunningJob& r) {
  const Micros limit = r.started() + 20'000 * k_ms;
  for (;;) {
    const Micros now = now_micros();
    REQUIRE(now < limit);
    r.tick(now);
    if (const auto status = r.try_reap()) {
      return Ended{r.result(*status), now_micros() - r.started()};
    }
    sys::sleep_for(2 * k_ms);
  }
}

RunningJob start(const std::string& command, double timeout, Micros grace) {
  SpawnSpec s;
  s.command = command;
  s.log_fd = sys::dev_null();
  const Micros now = now_micros();
  return RunningJob(Claimed{}, spawn_job(s), now, timeout, grace);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Whether process `pid` has exited (gone, or a zombie that nobody has reaped yet).
bool exited(pid_t pid) {
  const std::string stat = slurp(fmt::format("/proc/{}/stat", pid));
  const auto paren = stat.rfind(')');
  return stat.empty() || (paren != std::string::npos && stat.substr(paren + 2, 1) == "Z");
}

// Waits (at most 20 s) for `pred`.
bool eventually(const std::function<bool()>& pred) {
  const Micros limit = now_micros() + 20'000 * k_ms;
  while (!pred()) {
    if (now_micros() > limit) {
      return false;
    }
    sys::sleep_for(5 * k_ms);
  }
  return true;
}

} // namespace

TEST_CASE("RunningJob: a run that ends by itself is never signalled", "[worker]") {
  RunningJob ok = start("true", 30, 1000 * k_ms);
  CHECK(ok.next_tick() == ok.started() + 30'000'000);
  const Ended a = drive(ok);
  CHECK(a.result.exit_code == 0);
  CHECK(a.result.error.empty());

  RunningJob bad = start("exit 3", 0, 1000 * k_ms);
  CHECK_FALSE(bad.next_tick()); // no timeout: nothing to wake for
  const Ended b = drive(bad);
  CHECK(b.result.exit_code == 3);
  CHECK(b.result.error == "exit status 3");
}

TEST_CASE("RunningJob: the timeout sends SIGTERM to the whole process group", "[worker]") {
  TempDir t;
  const fs::path pidfile = t.path() / "pid";
  // The shell and its background sleep both die of the SIGTERM: the group got it.
  RunningJob r = start(fmt::format("sleep 30 & echo $! > {}; wait", pidfile.string()), 0.2, 10'000 * k_ms);
  const Ended e = drive(r);
  CHECK(e.result.error == "timeout");
  CHECK(e.result.exit_code == 128 + SIGTERM);
  CHECK(e.after >= 200 * k_ms);
  CHECK(e.after < 10'000 * k_ms); // the SIGKILL was not needed
  const pid_t sleeper = std::stoi(slurp(pidfile));
  CHECK(eventually([&] { return exited(sleeper); }));
}

TEST_CASE("RunningJob: a group that ignores SIGTERM gets SIGKILL once the grace is over", "[worker]") {
  TempDir t;
  const fs::path pidfile = t.path() / "pid";
  const Micros grace = 400 * k_ms;
  RunningJob r = start(fmt::format("trap '' TERM; sleep 30 & echo $! > {}; wait", pidfile.string()), 0.1, grace);
  CHECK(r.next_tick() == r.started() + 100 * k_ms);
  const Ended e = drive(r);
  CHECK(e.result.error == "timeout");
  CHECK(e.result.exit_code == 128 + SIGKILL);
  CHECK(e.after >= 100 * k_ms + grace);
  const pid_t sleeper = std::stoi(slurp(pidfile));
  CHECK(eventually([&] { return exited(sleeper); }));
}

TEST_CASE("RunningJob: stop-now ends the run at once and says so; a second stop changes nothing", "[worker]") {
  RunningJob r = start("sleep 30", 0, 10'000 * k_ms);
  const Micros t0 = now_micros();
  r.stop_now(t0);
  REQUIRE(r.next_tick() == t0 + 10'000 * k_ms); // the SIGKILL, should the SIGTERM not do
  r.stop_now(t0 + 5'000 * k_ms);
  CHECK(r.next_tick() == t0 + 10'000 * k_ms);
  const Ended e = drive(r);
  CHECK(e.result.error == "stopped by 'queuectl worker stop --now'");
  CHECK(e.result.exit_code == 128 + SIGTERM);
  CHECK(e.after < 10'000 * k_ms);
}

namespace {

// Claims job `id` and decides its outcome (completed), as a worker does before pushing it.
Committer::Item outcome(Spool& s, const std::string& id) {
  Transitions tx(s);
  ClaimResult r = tx.claim(JobState::pending, id, Config(), now_micros());
  REQUIRE(r.status == ClaimResult::claimed);
  Outcome o = tx.conclude(std::move(*r.job), RunResult{0, ""}, Config(), now_micros());
  return Committer::Item{std::move(o), outcome_event(JobState::completed, 0.0)};
}

bool locked(const Spool& s, JobState st, const std::string& id) {
  const Fd fd = sys::open_path(s.path_of(st, job_file(id)), O_RDONLY);
  REQUIRE(fd);
  return !sys::try_lock(fd.get(), true);
}

const LogSink k_log = [](std::string_view line) { std::cerr << line << "\n"; };

} // namespace

TEST_CASE("Committer: a full group is committed at once, without waiting for its window", "[worker]") {
  TempDir t;
  Spool s = Spool::open(t.path());
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(enqueue_cmd(s, "true"));
  }
  Committer c(s, k_log, CommitGrouping{std::chrono::milliseconds(600'000), 4});
  const Micros t0 = now_micros();
  for (int i = 0; i < 4; ++i) {
    c.push(outcome(s, ids[static_cast<std::size_t>(i)]));
  }
  REQUIRE(eventually([&] { return c.groups() == 1; }));
  for (int i = 0; i < 4; ++i) {
    CHECK(s.dir(JobState::completed).exists(job_file(ids[static_cast<std::size_t>(i)])));
  }
  // The fifth waits for its window (ten minutes here): still in processing/, still locked.
  c.push(outcome(s, ids[4]));
  CHECK(s.dir(JobState::processing).exists(job_file(ids[4])));
  CHECK(locked(s, JobState::processing, ids[4]));
  c.close(); // commits it now
  CHECK(c.groups() == 2);
  CHECK(s.dir(JobState::completed).exists(job_file(ids[4])));
  CHECK_FALSE(locked(s, JobState::completed, ids[4]));
  CHECK(now_micros() - t0 < 60'000 * k_ms);
}

TEST_CASE("Committer: what arrives within the window shares one group", "[worker]") {
  TempDir t;
  Spool s = Spool::open(t.path());
  std::vector<Committer::Item> items;
  for (int i = 0; i < 3; ++i) {
    items.push_back(outcome(s, enqueue_cmd(s, "true")));
  }
  Committer c(s, k_log, CommitGrouping{std::chrono::milliseconds(600'000), 32});
  for (auto& it : items) {
    c.push(std::move(it));
  }
  c.close();
  CHECK(c.groups() == 1);
  CHECK(files_in(t.path() / "done") == 3 * 2); // each job's file and its log
  CHECK(files_in(t.path() / "processing") == 0);
}

namespace {

// A Worker in a child process, as `worker start` runs it (signals blocked, read from its
// signalfd).
pid_t start_worker(const fs::path& root, WorkerTimes times) {
  std::cout.flush(); // or the child's exit prints it again
  (void)std::fflush(stdout);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = 3;
    try {
      sys::block_signals(sys::signal_set({SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGPIPE}));
      Spool spool = Spool::open(root);
      Worker w(spool, 0, k_log, times);
      rc = w.run(-1);
    } catch (const std::exception& e) {
      std::cerr << "worker: " << e.what() << "\n";
    }
    ::_exit(rc);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

Json job_in(const Spool& s, JobState st, const std::string& id) {
  return raw(s, st, id);
}

} // namespace

TEST_CASE("Worker: stop lets the running job finish and records it, then exits 0", "[worker]") {
  TempDir t;
  Spool s = Spool::open(t.path());
  const fs::path marker = t.path() / "marker";
  const fs::path go = t.path() / "go";
  const std::string id =
      enqueue_cmd(s, fmt::format("while [ ! -e {} ]; do sleep 0.01; done; touch {}", go.string(), marker.string()));
  const pid_t w = start_worker(t.path(), WorkerTimes{});
  REQUIRE(eventually([&] { return s.dir(JobState::processing).exists(job_file(id)); }));
  REQUIRE(::kill(w, SIGTERM) == 0);
  // Stopping: the job still runs, and is let finish.
  sys::sleep_for(100 * k_ms);
  CHECK(s.dir(JobState::processing).exists(job_file(id)));
  std::ofstream(go.string()) << "";
  CHECK(wait_exit(w) == 0);
  CHECK(fs::exists(marker));
  CHECK(job_in(s, JobState::completed, id)["state"] == "completed");
}

TEST_CASE("Worker: stop-now ends the running job's group (SIGKILL after the grace) and records the run as "
          "failed",
          "[worker]") {
  TempDir t;
  Spool s = Spool::open(t.path());
  const fs::path started = t.path() / "started";
  const std::string id = enqueue_cmd(s, fmt::format("trap '' TERM; touch {}; sleep 30", started.string()));
  WorkerTimes times;
  times.kill_grace = 300 * k_ms;
  const pid_t w = start_worker(t.path(), times);
  REQUIRE(eventually([&] { return fs::exists(started); }));
  const Micros t0 = now_micros();
  REQUIRE(::kill(w, SIGUSR1) == 0);
  CHECK(wait_exit(w) == 0);
  CHECK(now_micros() - t0 >= 300 * k_ms);
  CHECK(now_micros() - t0 < 20'000 * k_ms);
  const Json j = job_in(s, JobState::failed, id); // retries are left
  CHECK(j["last_error"] == "stopped by 'queuectl worker stop --now'");
  CHECK(j["exit_code"] == 128 + SIGKILL);
}

TEST_CASE("Worker: a job past its timeout is ended and its run counted as failed", "[worker]") {
  TempDir t;
  Spool s = Spool::open(t.path());
  JobOverrides o;
  o.command = "sleep 30";
  o.timeout = 0.2;
  o.max_retries = 0;
  const std::string id = enqueue_one(s, Json(), o);
  const pid_t w = start_worker(t.path(), WorkerTimes{});
  REQUIRE(eventually([&] { return s.dir(JobState::dead).exists(job_file(id)); }));
  REQUIRE(::kill(w, SIGTERM) == 0);
  CHECK(wait_exit(w) == 0);
  const Json j = job_in(s, JobState::dead, id);
  CHECK(j["last_error"] == "timeout");
  CHECK(j["exit_code"] == 128 + SIGTERM);
}

TEST_CASE("Worker: a config change applies to the next job without a restart", "[worker]") {
  TempDir t;
  Spool s = Spool::open(t.path());
  cmd::config_set(s, "backoff-base", "1000"); // the first retry 1000 s away
  const pid_t w = start_worker(t.path(), WorkerTimes{});
  auto retry_in = [&](const std::string& id) {
    REQUIRE(eventually([&] { return s.dir(JobState::failed).exists(job_file(id)); }));
    const Json j = raw(s, JobState::failed, id);
    return *parse_time(j["next_run_at"].get<std::string>()) - *parse_time(j["updated_at"].get<std::string>());
  };
  CHECK(retry_in(enqueue_cmd(s, "exit 1")) >= 999 * 1'000'000);
  cmd::config_set(s, "backoff-base", "30"); // replaced by rename, as `config set` does
  CHECK(retry_in(enqueue_cmd(s, "exit 1")) <= 31 * 1'000'000);
  std::filesystem::remove(t.path() / "config.json"); // removed: the defaults (2 s)
  CHECK(retry_in(enqueue_cmd(s, "exit 1")) <= 3 * 1'000'000);
  REQUIRE(::kill(w, SIGTERM) == 0);
  CHECK(wait_exit(w) == 0);
}

TEST_CASE("Worker: with room for 4 jobs in its index, it runs 60 in the order of work, scanning as it goes",
          "[worker]") {
  TempDir t;
  Spool s = Spool::open(t.path());
  const fs::path ran = t.path() / "ran";
  // 50 jobs enqueued in one batch (their order from pending.index), 10 drop-ins (from their files), mixed priorities.
  std::string input;
  for (int i = 0; i < 50; ++i) {
    input +=
        fmt::format(R"({{"id":"e{}","priority":{},"command":"echo e{} >> {}"}})", i, i % 3, i, ran.string()) + "\n";
  }
  enqueue_lines(s, input, JobOverrides());
  for (int i = 0; i < 10; ++i) {
    std::ofstream(t.path() / "pending" / fmt::format("d{}.json", i))
        << Json{{"command", fmt::format("echo d{} >> {}", i, ran.string())}, {"priority", 1 + i % 2}}.dump();
  }
  // The order of work: priority, then age (the batch shares created_at: ids then), the
  // drop-ins (no created_at: their files' times, later than the batch) after the batch.
  std::vector<std::string> want;
  for (int p : {2, 1, 0}) {
    std::vector<std::string> batch;
    for (int i = 0; i < 50; ++i) {
      if (i % 3 == p) {
        batch.push_back(fmt::format("e{}", i));
      }
    }
    std::sort(batch.begin(), batch.end());
    want.insert(want.end(), batch.begin(), batch.end());
    for (int i = 0; i < 10; ++i) {
      if (1 + i % 2 == p) {
        want.push_back(fmt::format("d{}", i));
      }
    }
  }
  WorkerTimes times;
  times.index_capacity = 4;
  const pid_t w = start_worker(t.path(), times);
  REQUIRE(eventually([&] { return files_in(t.path() / "done") == 2 * 60; }));
  REQUIRE(::kill(w, SIGTERM) == 0);
  CHECK(wait_exit(w) == 0);
  std::vector<std::string> got;
  std::ifstream in(ran);
  for (std::string line; std::getline(in, line);) {
    got.push_back(line);
  }
  CHECK(got == want);
}

TEST_CASE("Worker: when every job its index keeps is of a full queue, it finds the other queues' jobs past the cut",
          "[worker]") {
  TempDir t;
  Spool s = Spool::open(t.path());
  cmd::queue_concurrency(s, "busy", 1);
  const fs::path gate = t.path() / "gate";
  const fs::path ran = t.path() / "ran";
  // Ten jobs of `busy` first in the order of work; the first holds the queue's only slot
  // until the gate opens. Three jobs of `other` come after them, past a 4-job index.
  std::string input;
  for (int i = 0; i < 10; ++i) {
    input += Json{{"id", fmt::format("b{}", i)},
                  {"queue", "busy"},
                  {"priority", 5},
                  {"command", fmt::format("while [ ! -e {} ]; do sleep 0.01; done; echo b{} >> {}", gate.string(), i,
                                          ran.string())}}
                 .dump() +
             "\n";
  }
  for (int i = 0; i < 3; ++i) {
    input += Json{{"id", fmt::format("o{}", i)},
                  {"queue", "other"},
                  {"command", fmt::format("echo o{} >> {}", i, ran.string())}}
                 .dump() +
             "\n";
  }
  enqueue_lines(s, input, JobOverrides());
  WorkerTimes times;
  times.index_capacity = 4;
  const pid_t w1 = start_worker(t.path(), times);
  const pid_t w2 = start_worker(t.path(), times);
  // While b0 holds the slot, the other worker runs the other queue's jobs.
  CHECK(eventually([&] { return files_in(t.path() / "done") == 2 * 3; }));
  CHECK(files_in(t.path() / "processing") == 2); // b0 and its log: no second job of `busy`
  std::ofstream(gate.string()) << "";
  CHECK(eventually([&] { return files_in(t.path() / "done") == 2 * 13; }));
  REQUIRE(::kill(w1, SIGTERM) == 0);
  REQUIRE(::kill(w2, SIGTERM) == 0);
  CHECK(wait_exit(w1) == 0);
  CHECK(wait_exit(w2) == 0);
}
