#include "queuectl/process.hpp"

#include "queuectl/error.hpp"
#include "queuectl/fd.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

extern char** environ;

namespace queuectl {

namespace {

// Everything the vfork child needs, prepared before vfork; the child reports a failure
// before exec through it (it runs on our memory while we are suspended).
struct ChildArgs {
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;
  int null_fd = -1;
  int log_fd = -1;
  const int* keep = nullptr;
  std::size_t nkeep = 0;
  sigset_t mask{};
  volatile int child_errno = 0;
  volatile int failed_chdir = 0;
};

// In the vfork child: system calls only, then exec or _exit.
[[noreturn]] void exec_child(ChildArgs& a) {
  ::setpgid(0, 0); // its own process group: Ctrl-C at the worker's terminal spares it
  // Every signal is blocked since before vfork. One sent to the worker's group before
  // the setpgid above (a Ctrl-C that raced the claim) is pending here: setting its
  // action to SIG_IGN discards it, then the default is restored. Our dispositions are a
  // copy (vfork shares memory, not the signal table), so the worker's stay as they are.
  sigset_t pending;
  if (::sigpending(&pending) == 0) {
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP && ::sigismember(&pending, sig) == 1) {
        struct sigaction sa {};
        sa.sa_handler = SIG_IGN;
        ::sigaction(sig, &sa, nullptr);
        sa.sa_handler = SIG_DFL;
        ::sigaction(sig, &sa, nullptr);
      }
    }
  }
  ::sigprocmask(SIG_SETMASK, &a.mask, nullptr);
  ::dup2(a.null_fd, STDIN_FILENO);
  if (a.log_fd >= 0) {
    ::dup2(a.log_fd, STDOUT_FILENO);
    ::dup2(a.log_fd, STDERR_FILENO);
  }
  for (std::size_t i = 0; i < a.nkeep; ++i) {
    ::fcntl(a.keep[i], F_SETFD, 0); // the job's locks survive exec (our fd table is a copy)
  }
  if (a.cwd && ::chdir(a.cwd) != 0) {
    a.child_errno = errno;
    a.failed_chdir = 1;
    ::_exit(127);
  }
  ::execve("/bin/sh", a.argv, a.envp);
  a.child_errno = errno;
  ::_exit(127);
}

} // namespace

pid_t spawn_job(const SpawnSpec& spec) {
  // Everything the child needs is prepared before vfork: between vfork and exec the
  // child may only make system calls (it runs on our memory while we are suspended).
  // Opened once per process (close-on-exec; the child dup2s it onto stdin).
  static const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) {
    throw_errno("cannot open", "/dev/null");
  }
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
  ChildArgs a;
  a.argv = argv;
  a.envp = envp.empty() ? environ : envp.data();
  a.cwd = spec.cwd ? spec.cwd->c_str() : nullptr;
  a.null_fd = devnull;
  a.log_fd = spec.log_fd;
  a.keep = spec.keep_fds.data();
  a.nkeep = spec.keep_fds.size();
  sigemptyset(&a.mask);
  // vfork rather than posix_spawn: glibc's posix_spawn child makes two sigaction calls
  // per signal before exec; this worker installs no handlers, so none are needed.
  // The child starts with every signal blocked, so that none reaches it before it has a
  // process group of its own (see exec_child).
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::vfork();
  if (pid == 0) {
    exec_child(a);
  }
  const int vfork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = vfork_errno;
  if (pid < 0) {
    throw_errno("cannot start job", spec.command);
  }
  if (a.child_errno != 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (a.failed_chdir) {
      fail(fmt::format("cannot start job: cannot change to directory '{}': {}", *spec.cwd,
                       std::strerror(a.child_errno)));
    }
    fail(fmt::format("cannot start job: cannot run /bin/sh: {}", std::strerror(a.child_errno)));
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
