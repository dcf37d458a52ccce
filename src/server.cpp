#include "queuectl/server.hpp"

#include "queuectl/catalog.hpp"
#include "queuectl/commands.hpp"
#include "queuectl/counters.hpp"
#include "queuectl/error.hpp"
#include "queuectl/json_text.hpp"
#include "queuectl/metrics.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"
#include "queuectl/version.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

namespace queuectl {

extern const char* const k_dashboard_html; // dashboard.cpp, generated from src/dashboard.html

void parse_listen(const std::string& text, ServeOptions& o) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    bad_usage(fmt::format("invalid --listen '{}': expected HOST:PORT, e.g. 127.0.0.1:8080", text));
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = text.substr(colon + 1);
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535) {
    bad_usage(fmt::format("invalid port in --listen '{}'", text));
  }
  o.host = host.empty() ? "127.0.0.1" : host;
  o.port = static_cast<int>(p);
}

namespace {

constexpr std::size_t k_max_body = 1 << 20; // 413 beyond this
constexpr int k_sample_every_s = 2;
constexpr std::size_t k_samples = 300; // ten minutes

void send_json(httplib::Response& res, int status, const Json& j) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& msg) {
  send_json(res, status, Json{{"error", msg}});
}

// ASCII case-insensitive equality (Origin and Host are case-insensitive).
bool same_text(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// "application/json", with parameters or not, any case.
bool is_json_type(std::string_view type) {
  type = type.substr(0, type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) {
    type.remove_suffix(1);
  }
  return same_text(type, "application/json");
}

// "Bearer TOKEN", the scheme in any case, the token compared in constant time.
bool bearer_matches(std::string_view header, const std::string& token) {
  constexpr std::string_view scheme = "bearer ";
  if (header.size() < scheme.size() || !same_text(header.substr(0, scheme.size()), scheme)) {
    return false;
  }
  const std::string_view given = header.substr(scheme.size());
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (std::size_t i = 0; i < token.size(); ++i) {
    diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

bool is_wildcard(const std::string& host) {
  return host == "0.0.0.0" || host == "::";
}

// Whether a request's Host names this server: the listen address (and, on loopback, the
// loopback names), with the port we listen on if it has one. A wildcard listen takes any
// name: it needs a token, which a rebound page does not have.
bool host_allowed(const ServeOptions& o, int port, std::string_view host) {
  if (host.empty()) {
    return false;
  }
  if (is_wildcard(o.host)) {
    return true;
  }
  std::string_view name = host;
  if (const auto colon = host.rfind(':');
      colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos) {
    if (host.substr(colon + 1) != std::to_string(port)) {
      return false;
    }
    name = host.substr(0, colon);
  }
  const std::string ours = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  if (same_text(name, ours)) {
    return true;
  }
  return o.loopback && (same_text(name, "localhost") || name == "127.0.0.1" || name == "[::1]");
}

class Api {
public:
  Api(const std::filesystem::path& root, const ServeOptions& o) : m_spool(Spool::open_existing(root)), m_opts(o) {}

  void install(httplib::Server& svr);
  void sample(); // one throughput sample (called every k_sample_every_s)
  void set_port(int port) { m_port = port; }

private:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  // Registers `handlers` for `pattern`; every other method gets 405.
  void route(httplib::Server& svr, const std::string& pattern, std::optional<Handler> get, std::optional<Handler> post);
  // Runs a handler, turning queuectl errors into JSON error responses.
  Handler guarded(Handler h);

  std::string job_id(const httplib::Request& req) const;
  // Why the server must refuse `req` before any route sees it (SPEC section 5: Host,
  // token, and what a request that changes something must carry), with the status.
  std::optional<std::string> refuse(const httplib::Request& req, int& status) const;

  Spool m_spool;
  ServeOptions m_opts;
  std::atomic<int> m_port{0};
  std::mutex m_mutex;
  std::deque<Json> m_samples;
  std::mutex m_catalog_mutex; // one listing at a time: concurrent ones would only repeat it
  Catalog m_catalog{m_spool};
};

Api::Handler Api::guarded(Handler h) {
  return [h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
    try {
      h(req, res);
    } catch (const NotFound& e) {
      send_error(res, 404, e.what());
    } catch (const Error& e) {
      send_error(res, e.code() == Exit::usage ? 400 : 409, e.what());
    } catch (const std::exception& e) {
      send_error(res, 500, std::string("internal error: ") + e.what());
    }
  };
}

void Api::route(httplib::Server& svr, const std::string& pattern, std::optional<Handler> get,
                std::optional<Handler> post) {
  std::string allow = get && post ? "GET, POST" : get ? "GET" : "POST";
  const Handler not_allowed = [allow](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Allow", allow);
    send_error(res, 405, fmt::format("method {} not allowed here (allowed: {})", req.method, allow));
  };
  svr.Get(pattern, get ? guarded(*get) : not_allowed);
  svr.Post(pattern, post ? guarded(*post) : not_allowed);
  svr.Put(pattern, not_allowed);
  svr.Delete(pattern, not_allowed);
  svr.Patch(pattern, not_allowed);
  svr.Options(pattern, not_allowed); // no CORS preflight is ever granted
}

// A query parameter that is a count or a byte offset: nullopt when absent; bad usage
// when not a decimal number that fits.
std::optional<std::uint64_t> count_param(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) {
    return std::nullopt;
  }
  const std::string v = req.get_param_value(name);
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || v[0] == '-' || errno == ERANGE) {
    bad_usage(fmt::format("invalid {} '{}'", name, v));
  }
  return n;
}

std::string Api::job_id(const httplib::Request& req) const {
  const std::string id = req.matches[1];
  if (!valid_id(id)) {
    bad_usage(fmt::format("invalid job id '{}'", id));
  }
  return id;
}

void Api::sample() {
  const auto counts = m_spool.counts();
  const CounterSnapshot s = Counters::read(m_spool);
  Json j = {{"t", format_time(now_micros())},
            {"completed", s[Counter::runs_completed]},
            {"failed", s[Counter::runs_failed]},
            {"pending", counts[static_cast<std::size_t>(JobState::pending)]}};
  const std::lock_guard<std::mutex> g(m_mutex);
  m_samples.push_back(std::move(j));
  while (m_samples.size() > k_samples) {
    m_samples.pop_front();
  }
}

std::optional<std::string> Api::refuse(const httplib::Request& req, int& status) const {
  // DNS rebinding: a page of another site whose name now resolves to this machine
  // reaches us with its own name in Host.
  const std::string host = req.get_header_value("Host");
  if (!host_allowed(m_opts, m_port, host)) {
    status = 403;
    return host.empty() ? std::string("a request must name this server in its Host header")
                        : fmt::format("Host '{}' is not this server's address", host);
  }
  const bool page = req.method == "GET" && req.path == "/"; // the dashboard asks for the token itself
  if (m_opts.token && !page && !bearer_matches(req.get_header_value("Authorization"), *m_opts.token)) {
    status = 401;
    return std::string("this server needs its token: send 'Authorization: Bearer TOKEN'");
  }
  if (req.method == "POST") { // the one method that changes something; others get 405
    // A web page can send a cross-site form or a no-cors fetch, but neither with this
    // type: only a script of our own origin can (anything else needs a CORS preflight,
    // which this server never grants).
    if (!is_json_type(req.get_header_value("Content-Type"))) {
      status = 403;
      return std::string("a request that changes something must have 'Content-Type: application/json'");
    }
    if (req.has_header("Origin") && !same_text(req.get_header_value("Origin"), "http://" + host)) {
      status = 403;
      return fmt::format("Origin '{}' is not this server's: requests that change something are refused from "
                         "other sites",
                         req.get_header_value("Origin"));
    }
  }
  return std::nullopt;
}

void Api::install(httplib::Server& svr) {
  svr.set_payload_max_length(k_max_body);
  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "POST" && !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
      // A request with neither has no body (RFC 9112 6.3), but httplib would read one
      // until the client hangs up, then answer 400. This handler runs before that read,
      // on the server's own request object: say so explicitly.
      const_cast<httplib::Request&>(req).headers.emplace("Content-Length", "0");
    }
    int status = 0;
    if (const auto why = refuse(req, status)) {
      if (status == 401) {
        res.set_header("WWW-Authenticate", "Bearer");
      }
      send_error(res, status, *why);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      send_error(res, res.status,
                 res.status == 413   ? "request body too large (the limit is 1 MiB)"
                 : res.status == 404 ? "not found"
                 : res.status == 400 ? "bad request"
                                     : "request failed");
    }
  });

  // No page of another site may frame the dashboard (clickjacking its buttons).
  svr.set_default_headers({{"X-Frame-Options", "DENY"}, {"X-Content-Type-Options", "nosniff"}});
  route(svr, "/", Handler([](const httplib::Request&, httplib::Response& res) {
          // The page loads nothing from elsewhere and talks to this server only.
          res.set_header("Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                         "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                         "frame-ancestors 'none'");
          res.set_content(k_dashboard_html, "text/html; charset=utf-8");
        }),
        std::nullopt);
  route(svr, "/metrics", Handler([this](const httplib::Request&, httplib::Response& res) {
          res.set_content(prometheus_text(m_spool), "text/plain; version=0.0.4");
        }),
        std::nullopt);
  route(svr, "/api/status",
        Handler([this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, cmd::status(m_spool)); }),
        std::nullopt);
  route(svr, "/api/jobs", Handler([this](const httplib::Request& req, httplib::Response& res) {
          std::optional<JobState> st;
          if (req.has_param("state")) {
            st = parse_state(req.get_param_value("state"));
            if (!st) {
              bad_usage(fmt::format("invalid state '{}'", req.get_param_value("state")));
            }
          }
          const std::size_t offset = count_param(req, "offset").value_or(0);
          const std::size_t limit = count_param(req, "limit").value_or(SIZE_MAX);
          bool newest = false;
          if (req.has_param("order")) {
            const std::string order = req.get_param_value("order");
            if (order != "oldest" && order != "newest") {
              bad_usage(fmt::format("invalid order '{}': expected oldest or newest", order));
            }
            newest = order == "newest";
          }
          const auto given = [&](const char* name) -> std::optional<std::string> {
            if (!req.has_param(name) || req.get_param_value(name).empty()) {
              return std::nullopt;
            }
            return req.get_param_value(name);
          };
          if (req.has_param("queue") || req.has_param("tag") || given("q")) {
            // A filter reads every job of the state (their files say their queue, tags
            // and command).
            cmd::JobFilter f;
            f.state = st;
            if (req.has_param("queue")) {
              f.queue = req.get_param_value("queue");
              cmd::check_queues({*f.queue});
            }
            if (req.has_param("tag")) {
              f.tag = req.get_param_value("tag");
            }
            f.text = given("q");
            std::vector<StoredJob> all = cmd::list(m_spool, f);
            if (newest) {
              std::reverse(all.begin(), all.end());
            }
            res.set_header("X-Total-Count", std::to_string(all.size()));
            std::vector<StoredJob> page;
            for (std::size_t i = offset; i < all.size() && page.size() < limit; ++i) {
              page.push_back(std::move(all[i]));
            }
            send_json(res, 200, cmd::jobs_json(page));
            return;
          }
          // The catalog remembers each job's place, so a refresh of a page of a
          // million-job queue lists directories and reads the page's files, not every
          // job; the total counts directory entries, as status does.
          std::vector<StoredJob> jobs;
          {
            const std::lock_guard<std::mutex> g(m_catalog_mutex);
            jobs = m_catalog.page(st, offset, limit, newest);
          }
          const auto counts = m_spool.counts();
          const std::size_t total = st ? counts[static_cast<std::size_t>(*st)]
                                       : std::accumulate(counts.begin(), counts.end(), std::size_t{0});
          res.set_header("X-Total-Count", std::to_string(total));
          send_json(res, 200, cmd::jobs_json(jobs));
        }),
        Handler([this](const httplib::Request& req, httplib::Response& res) {
          cmd::EnqueueRequest r;
          r.base = Job::parse(req.body).json();
          send_json(res, 201, Json{{"id", cmd::enqueue(m_spool, r)[0]}});
        }));
  route(svr, R"(/api/jobs/([^/]+))", Handler([this](const httplib::Request& req, httplib::Response& res) {
          send_json(res, 200, cmd::show(m_spool, job_id(req)));
        }),
        std::nullopt);
  route(svr, R"(/api/jobs/([^/]+)/log)", Handler([this](const httplib::Request& req, httplib::Response& res) {
          // ?from=N: the bytes from N on; ?tail=N: at most the last N. X-Log-Offset says
          // where the text starts, X-Log-Size how long the log was.
          const auto from = count_param(req, "from");
          const auto tail = count_param(req, "tail");
          if (!from && !tail) {
            res.set_content(cmd::log_text(m_spool, job_id(req)), "text/plain; charset=utf-8");
            return;
          }
          cmd::LogSlice slice = cmd::log_slice(m_spool, job_id(req), from.value_or(0), tail);
          res.set_header("X-Log-Offset", std::to_string(slice.offset));
          res.set_header("X-Log-Size", std::to_string(slice.size));
          res.set_content(std::move(slice.text), "text/plain; charset=utf-8");
        }),
        std::nullopt);
  route(svr, R"(/api/jobs/([^/]+)/retry)", std::nullopt,
        Handler([this](const httplib::Request& req, httplib::Response& res) {
          const std::string id = job_id(req);
          cmd::retry(m_spool, id);
          send_json(res, 200, cmd::show(m_spool, id));
        }));
  route(svr, R"(/api/jobs/([^/]+)/cancel)", std::nullopt,
        Handler([this](const httplib::Request& req, httplib::Response& res) {
          const std::string id = job_id(req);
          cmd::cancel(m_spool, id);
          send_json(res, 200, cmd::show(m_spool, id));
        }));
  route(svr, R"(/api/jobs/([^/]+)/purge)", std::nullopt,
        Handler([this](const httplib::Request& req, httplib::Response& res) {
          const std::string id = job_id(req);
          cmd::purge_job(m_spool, id);
          send_json(res, 200, Json{{"id", id}, {"purged", true}});
        }));
  // The dead-letter queue as a whole: `dlq retry --all` and `dlq purge`.
  route(svr, "/api/dlq/retry", std::nullopt, Handler([this](const httplib::Request&, httplib::Response& res) {
          send_json(res, 200, Json{{"retried", cmd::retry_dead(m_spool, {}, true)}});
        }));
  route(svr, "/api/dlq/purge", std::nullopt, Handler([this](const httplib::Request&, httplib::Response& res) {
          send_json(res, 200, Json{{"purged", cmd::purge(m_spool, JobState::dead, std::nullopt)}});
        }));
  for (const bool hold : {true, false}) {
    route(svr, hold ? R"(/api/jobs/([^/]+)/hold)" : R"(/api/jobs/([^/]+)/release)", std::nullopt,
          Handler([this, hold](const httplib::Request& req, httplib::Response& res) {
            const std::string id = job_id(req);
            hold ? cmd::hold(m_spool, id) : cmd::release(m_spool, id);
            send_json(res, 200, cmd::show(m_spool, id));
          }));
  }
  route(svr, "/api/queues", Handler([this](const httplib::Request&, httplib::Response& res) {
          send_json(res, 200, cmd::queue_list(m_spool));
        }),
        std::nullopt);
  for (const bool pause : {true, false}) {
    route(svr, pause ? R"(/api/queues/([^/]+)/pause)" : R"(/api/queues/([^/]+)/resume)", std::nullopt,
          Handler([this, pause](const httplib::Request& req, httplib::Response& res) {
            const std::string name = req.matches[1];
            cmd::check_queues({name});
            cmd::queue_pause(m_spool, {name}, pause);
            send_json(res, 200, Json{{"queue", name}, {"paused", pause}});
          }));
  }
  route(svr, "/api/workers", Handler([this](const httplib::Request&, httplib::Response& res) {
          send_json(res, 200, cmd::worker_status(m_spool));
        }),
        std::nullopt);
  route(svr, "/api/workers/start", std::nullopt, Handler([this](const httplib::Request& req, httplib::Response& res) {
          std::int64_t count = 1;
          if (!req.body.empty()) {
            std::string why;
            const Json j = parse_json_text(req.body, why).value_or(Json());
            if (!j.is_object() || (j.contains("count") && !j["count"].is_number_integer())) {
              bad_usage("expected {\"count\": N}");
            }
            count = j.value("count", std::int64_t{1}); // as int64: 2^32 + 1 must not pass as 1
          }
          if (count < 1 || count > 1024) {
            bad_usage("count must be between 1 and 1024");
          }
          // `worker start --detach` underneath: the workers outlive this server.
          const auto [rc, out] = sys::run(m_opts.self_exe, {"--spool", m_spool.root().string(), "worker", "start",
                                                            "--detach", "--count", std::to_string(count)});
          if (rc != 0) {
            send_error(res, 500, "worker start failed; see SPOOL/workers/detached.log");
            return;
          }
          Json pids = Json::array();
          for (std::size_t pos = 0; pos < out.size();) {
            const auto nl = out.find('\n', pos);
            pids.push_back(std::atol(out.substr(pos, nl - pos).c_str()));
            pos = nl == std::string::npos ? out.size() : nl + 1;
          }
          send_json(res, 201, Json{{"supervisor", pids.at(0)}, {"pids", pids}});
        }));
  route(svr, "/api/workers/stop", std::nullopt, Handler([this](const httplib::Request& req, httplib::Response& res) {
          bool now = false;
          if (!req.body.empty()) {
            std::string why;
            const Json j = parse_json_text(req.body, why).value_or(Json());
            if (!j.is_object() || (j.contains("now") && !j["now"].is_boolean())) {
              bad_usage("expected {\"now\": true|false}");
            }
            now = j.value("now", false);
          }
          // A graceful stop waits for running jobs: answer now, let it finish behind us.
          std::vector<std::string> args{"--spool", m_spool.root().string(), "worker", "stop"};
          if (now) {
            args.emplace_back("--now");
          }
          std::thread([exe = m_opts.self_exe, args] { sys::run(exe, args); }).detach();
          send_json(res, 202, Json{{"stopping", true}, {"now", now}});
        }));
  route(svr, "/api/throughput", Handler([this](const httplib::Request&, httplib::Response& res) {
          const std::lock_guard<std::mutex> g(m_mutex);
          send_json(res, 200, Json{{"interval_s", k_sample_every_s}, {"samples", Json(m_samples)}});
        }),
        std::nullopt);
}

} // namespace

int serve_command(const std::filesystem::path& spool, const std::string& listen, const std::string& token_file) {
  ServeOptions so;
  parse_listen(listen, so);
  if (!token_file.empty()) {
    const Fd fd = sys::open_path(token_file, O_RDONLY);
    if (!fd) {
      throw_errno("cannot read token file", token_file);
    }
    std::string t = sys::read_all(fd.get(), token_file);
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) {
      t.pop_back();
    }
    if (t.empty()) {
      bad_usage(fmt::format("token file '{}' is empty", token_file));
    }
    so.token = t;
  }
  // `worker start|stop` run as the main queuectl binary, which sits beside us in the
  // build tree and on PATH once installed.
  const std::filesystem::path self = sys::self_exe();
  const auto sibling = self.parent_path() / "queuectl";
  so.self_exe = sys::is_executable(sibling) ? sibling.string()
                                            : (self.parent_path() / k_queuectl_bin).lexically_normal().string();
  return run_server(spool, so, [&](int port) {
    const std::string line = fmt::format("queuectl: serving {} on http://{}:{}/\n", spool.string(),
                                         so.host.find(':') != std::string::npos ? "[" + so.host + "]" : so.host, port);
    sys::write_all(STDOUT_FILENO, line, "standard output");
  });
}

int run_server(const std::filesystem::path& root, const ServeOptions& options,
               const std::function<void(int port)>& on_listening) {
  ServeOptions o = options;
  const sys::ListenAddress addr = sys::resolve_listen(o.host, o.port);
  o.loopback = addr.loopback;
  if (!o.loopback && !o.token) {
    bad_usage(fmt::format("refusing to serve on {} without --token-file: anyone who can reach it could read jobs "
                          "and run commands; give a token file, or listen on 127.0.0.1",
                          o.host));
  }
  if (o.port != 0) {
    sys::probe_port(addr, o.host, o.port); // never shared: a second server fails here
  }
  Api api(root, o);
  httplib::Server svr;
  svr.set_socket_options([](socket_t sock) { sys::reuse_address(sock); }); // and no SO_REUSEPORT
  api.install(svr);
  int port = o.port;
  if (port == 0) {
    port = svr.bind_to_any_port(o.host);
  } else if (!svr.bind_to_port(o.host, port)) {
    port = -1;
  }
  if (port < 0) {
    fail(fmt::format("cannot listen on {}:{}: {}", o.host, o.port, std::strerror(errno)));
  }
  api.set_port(port);
  // SIGTERM/SIGINT stop the server; a thread waits for them so no handler does work.
  const sigset_t set = sys::signal_set({SIGTERM, SIGINT});
  sys::block_signals(set);
  std::atomic<bool> done{false};
  std::thread stopper([&] {
    while (!done && sys::wait_signal(set, 200'000) == 0) {
    }
    svr.stop();
  });
  std::thread sampler([&] {
    while (!done) {
      try {
        api.sample();
      } catch (const std::exception&) {
        // a sample lost to a transient error: the chart shows a gap
      }
      for (int i = 0; i < k_sample_every_s * 10 && !done; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });
  on_listening(port);
  svr.listen_after_bind();
  done = true;
  stopper.join();
  sampler.join();
  return 0;
}

} // namespace queuectl
