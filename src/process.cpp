#include "queuectl/process.hpp"

#include "queuectl/error.hpp"
#include "queuectl/fd.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <sys/wait.h>

#include <cstring>
#include <map>
#include <vector>

extern char** environ;

namespace queuectl {

sys::Child spawn_job(const SpawnSpec& spec) {
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
  sys::SpawnArgs a;
  a.path = "/bin/sh";
  a.argv = argv;
  a.envp = envp.empty() ? environ : envp.data();
  a.cwd = spec.cwd ? spec.cwd->c_str() : nullptr;
  a.out_fd = spec.log_fd;
  a.keep = spec.keep_fds.data();
  a.nkeep = spec.keep_fds.size();
  a.own_group = true; // Ctrl-C at the worker's terminal spares the job
  const sys::Spawned r = sys::spawn(a);
  if (r.failed_chdir) {
    fail(fmt::format("cannot start job: cannot change to directory '{}': {}", *spec.cwd, std::strerror(r.error)));
  }
  if (r.error != 0) {
    fail(fmt::format("cannot start job: cannot run /bin/sh: {}", std::strerror(r.error)));
  }
  return sys::Child(r.pid);
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
