#include "queuectl/process.hpp"

#include "queuectl/error.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

extern char** environ;

namespace queuectl {

namespace {

// RAII for the two posix_spawn helper objects.
struct SpawnSetup {
  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attr{};
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

} // namespace

pid_t spawn_job(const SpawnSpec& spec) {
  SpawnSetup s;
  posix_spawn_file_actions_addopen(&s.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (spec.log_fd >= 0) {
    posix_spawn_file_actions_adddup2(&s.actions, spec.log_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&s.actions, spec.log_fd, STDERR_FILENO);
  }
  for (int fd : spec.keep_fds) {
    // dup2 onto itself clears FD_CLOEXEC in the child only (glibc >= 2.29).
    posix_spawn_file_actions_adddup2(&s.actions, fd, fd);
  }
  if (spec.cwd) {
    posix_spawn_file_actions_addchdir_np(&s.actions, spec.cwd->c_str());
  }
  // No POSIX_SPAWN_SETSIGDEF: glibc would make two sigaction calls per signal in every
  // child. Handlers are reset by exec anyway; reset_ignored_signals() clears inherited
  // SIG_IGN dispositions once per worker instead.
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&s.attr, &empty);
  posix_spawnattr_setpgroup(&s.attr, 0);
  posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> env_store;
  std::vector<char*> envp;
  if (!spec.env.empty()) {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
      const std::string kv(*e);
      const auto eq = kv.find('=');
      if (eq != std::string::npos) {
        env[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
    }
    for (const auto& [k, v] : spec.env.items()) {
      if (v.is_string()) {
        env[k] = v.get<std::string>();
      }
    }
    for (const auto& [k, v] : env) {
      env_store.push_back(k + "=" + v);
    }
    for (std::string& kv : env_store) {
      envp.push_back(kv.data());
    }
    envp.push_back(nullptr);
  }
  std::string cmd = spec.command;
  char sh[] = "/bin/sh";
  char dash_c[] = "-c";
  char* argv[] = {sh, dash_c, cmd.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, "/bin/sh", &s.actions, &s.attr, argv, envp.empty() ? environ : envp.data());
  if (rc != 0) {
    if (spec.cwd && (rc == ENOENT || rc == ENOTDIR || rc == EACCES)) {
      fail(fmt::format("cannot start job: cannot change to directory '{}': {}", *spec.cwd, std::strerror(rc)));
    }
    fail(fmt::format("cannot start job: {}", std::strerror(rc)));
  }
  return pid;
}

void reset_ignored_signals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa {};
    if (sig == SIGKILL || sig == SIGSTOP || ::sigaction(sig, nullptr, &sa) != 0) {
      continue; // also skips glibc's internal signals, which refuse sigaction
    }
    if (sa.sa_handler == SIG_IGN) {
      sa.sa_handler = SIG_DFL;
      ::sigaction(sig, &sa, nullptr);
    }
  }
}

void signal_group(pid_t pgid, int sig) {
  if (pgid > 0) {
    ::kill(-pgid, sig);
  }
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return 255;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) {
    return fmt::format("exit status {}", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    const char* abbrev = ::sigabbrev_np(WTERMSIG(status));
    return fmt::format("killed by signal {} (SIG{})", WTERMSIG(status), abbrev ? abbrev : "?");
  }
  return "ended abnormally";
}

} // namespace queuectl
