// cli_commands: the table of the command line's commands (see cli.cpp): each row names
// a command, says whether it may create the spool, declares its options and runs it by
// calling the Commands layer and printing what it returns.
#pragma once

#include "queuectl/cli.hpp"
#include "queuectl/commands.hpp"

#include <CLI/CLI.hpp>

#include <optional>
#include <span>
#include <string>
#include <vector>

namespace queuectl::cli {

// Every option of every command, as CLI11 fills it in.
struct Args {
  std::optional<std::string> spool;
  bool json = false;
  cmd::EnqueueArgs enq;
  std::optional<cmd::EnqueueRequest> enq_checked; // what the check made of `enq`
  std::string id;
  std::vector<std::string> ids;
  std::string state;
  std::size_t limit = SIZE_MAX;
  bool follow = false;
  bool all = false;
  std::optional<double> older_than;
  std::string key, value;
  int count = 1;
  bool detach = false;
  bool now = false;
  std::string listen = "127.0.0.1:8080", token_file;
  std::optional<std::string> queue, tag; // list filters
  std::vector<std::string> queues;       // worker start --queue, queue pause/resume names
  std::string name;                      // queue set/unset
  std::optional<std::int64_t> concurrency;
  bool unset_concurrency = false;
  std::optional<double> wait_timeout;
  bool wait = false;                        // enqueue --wait
  bool cluster = false;                     // enqueue, wait, show --cluster
  std::string servers;                      // cluster join URL[,URL...]
  std::optional<std::string> stream, creds; // cluster join
  std::vector<std::string> words;           // help COMMAND...
  std::string shell;                        // completion SHELL
  bool utc = false;                         // list, dlq list --utc
};

struct Call {
  Args& a;
  Spool& spool;
  const Helpers& helpers;
  int argc;
  char** argv;
};

// One row of the table. A row without `run` or `clustered` is a group (`dlq`, `config`,
// `worker`).
struct Command {
  const char* path; // the words, "dlq retry"
  const char* help;
  bool writes; // may create the spool (SPEC section 5); only once check() passed
  void (*options)(CLI::App&, Args&);
  int (*run)(Call&);
  void (*check)(Args&, bool new_spool) = nullptr; // bad usage found without a spool
  // Carried out by the cluster's helper when this says so (see ClusterFn).
  bool (*clustered)(const Args&) = nullptr;
};

// The rows, parents before their children.
std::span<const Command> commands();

} // namespace queuectl::cli
