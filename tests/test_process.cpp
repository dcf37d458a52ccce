#include "queuectl/error.hpp"
#include "queuectl/fd.hpp"
#include "queuectl/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

using namespace queuectl;

namespace {
int run(const SpawnSpec& spec) {
  return spawn_job(spec).wait();
}
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
} // namespace

TEST_CASE("spawn_job: exit codes and signals", "[process]") {
  SpawnSpec s;
  s.command = "exit 3";
  CHECK(exit_code_of(run(s)) == 3);
  CHECK(describe_status(run(s)) == "exit status 3");
  s.command = "kill -9 $$";
  const int st = run(s);
  CHECK(exit_code_of(st) == 137);
  CHECK(describe_status(st) == "killed by signal 9 (SIGKILL)");
}

TEST_CASE("spawn_job: output, cwd, env, own process group, stdin empty", "[process]") {
  TempDir dir;
  const auto log = dir.path() / "out.log";
  Fd fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  SpawnSpec s;
  s.command =
      "pwd; echo \"$GREETING\"; echo err >&2; test \"$(ps -o pgid= $$ | tr -d ' ')\" = $$ && echo own-group; cat";
  s.cwd = dir.path().string();
  s.env = Json{{"GREETING", "hello"}};
  s.log_fd = fd.get();
  CHECK(exit_code_of(run(s)) == 0);
  CHECK(slurp(log) == dir.path().string() + "\nhello\nerr\nown-group\n");
}

TEST_CASE("spawn_job: a missing cwd is an error saying so", "[process]") {
  SpawnSpec s;
  s.command = "true";
  s.cwd = "/nonexistent/dir";
  CHECK_THROWS_WITH(spawn_job(s), Catch::Contains("/nonexistent/dir"));
}

TEST_CASE("spawn_job: the kept descriptor (the job's lock) is inherited, others are not", "[process]") {
  TempDir dir;
  const auto f = dir.path() / "job.json";
  std::ofstream(f) << "{}";
  Fd lock(::open(f.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(::flock(lock.get(), LOCK_EX) == 0);
  // High numbers: the shell uses low ones (from 10) for its own redirections.
  Fd lock_hi(::fcntl(lock.get(), F_DUPFD_CLOEXEC, 200));
  Fd other(::fcntl(lock.get(), F_DUPFD_CLOEXEC, 300));
  SpawnSpec s;
  s.keep_fds = {lock_hi.get()};
  s.command = "test -e /proc/$$/fd/" + std::to_string(lock_hi.get()) + " && ! test -e /proc/$$/fd/" +
              std::to_string(other.get());
  CHECK(exit_code_of(run(s)) == 0);
}
