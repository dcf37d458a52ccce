// queuectl-serve: the queuectl command line with the HTTP server linked in. `queuectl
// serve` executes it, so that the main binary does not load the HTTP and TLS libraries.
#include "queuectl/cli.hpp"
#include "queuectl/server.hpp"

int main(int argc, char** argv) {
  queuectl::cli::Helpers h = queuectl::cli::exec_helpers();
  h.serve = [](const std::filesystem::path& spool, const std::string& listen, const std::string& token_file, int,
               char**) { return queuectl::serve_command(spool, listen, token_file); };
  return queuectl::cli::run(argc, argv, h);
}
