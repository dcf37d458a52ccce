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

// Runs queuectl with the given arguments and returns the process exit status (0, 1, 2).
int run(int argc, char** argv, const ServeFn& serve);

// The ServeFn of the main binary: runs the same command line in queuectl-serve (next to
// this executable, else in the install's libexec directory).
int exec_serve_helper(const std::filesystem::path& spool, const std::string& listen, const std::string& token_file,
                      int argc, char** argv);

} // namespace queuectl::cli
