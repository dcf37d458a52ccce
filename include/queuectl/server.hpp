// server: `queuectl serve`: the REST API, /metrics and the web dashboard over HTTP.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace queuectl {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port
  std::optional<std::string> token; // when set, every request needs it (Bearer), but the page itself
  std::string self_exe;             // this program, run for `worker start|stop`
  bool loopback = true;             // `host` resolves to loopback addresses only (set by run_server)
};

// Parses "HOST:PORT", "[V6]:PORT" or ":PORT". Throws Error(usage).
void parse_listen(const std::string& text, ServeOptions& o);

// `queuectl serve` itself: reads the token file, prints where it listens, serves.
int serve_command(const std::filesystem::path& spool, const std::string& listen, const std::string& token_file);

// Serves the spool until SIGTERM or SIGINT (which the caller must not have blocked).
// Calls `on_listening(port)` once the socket is bound. Throws Error when the address does
// not resolve or cannot be bound (a port in use is never shared), and Error(usage) for
// an address other than loopback without a token: anyone who reaches it could run
// commands.
int run_server(const std::filesystem::path& root, const ServeOptions& o,
               const std::function<void(int port)>& on_listening);

} // namespace queuectl
