// cli: the `queuectl` command line: parses arguments, calls the library, prints results.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace queuectl::cli {

// How `serve` is carried out: the HTTP server lives in its own executable (it links
// libcpp-httplib and OpenSSL, which every short CLI call would otherwise load).
// Arguments: the spool, --listen, --token-file ("" if none), and the original argv.
using ServeFn = std::function<int(const std::filesystem::path& spool, const std::string& listen,
                                  const std::string& token_file, int argc, char** argv)>;

struct Args;
// How the cluster's commands are carried out (`cluster ...`, `enqueue --cluster`): they
// live in queuectl-cluster, which links libnats (and OpenSSL). Called once the command
// line is parsed, before any input is read or the spool is looked at; `command` is the
// table's path ("cluster join", "enqueue").
using ClusterFn = std::function<int(const std::string& command, Args& a, char** argv)>;

// The commands that run in helper executables.
struct Helpers {
  ServeFn serve;
  ClusterFn cluster;
};

// Runs queuectl with the given arguments and returns the process exit status (0, 1, 2).
int run(int argc, char** argv, const Helpers& helpers);

// The ServeFn of the main binary: runs the same command line in queuectl-serve (next to
// this executable, else in the install's libexec directory).
int exec_serve_helper(const std::filesystem::path& spool, const std::string& listen, const std::string& token_file,
                      int argc, char** argv);
// The ClusterFn of the main binary: runs the same command line in queuectl-cluster.
int exec_cluster_helper(const std::string& command, Args& a, char** argv);
// The helpers of the main binary.
Helpers exec_helpers();

} // namespace queuectl::cli
