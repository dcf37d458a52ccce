#include "queuectl/cli.hpp"

#include "queuectl/enqueue.hpp"
#include "queuectl/error.hpp"
#include "queuectl/logs.hpp"
#include "queuectl/registry.hpp"
#include "queuectl/commands.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/stats.hpp"
#include "queuectl/supervisor.hpp"
#include "queuectl/sys.hpp"
#include "queuectl/version.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>

namespace queuectl::cli {

namespace {

void out(std::string_view s) { sys::write_all(STDOUT_FILENO, s, "standard output"); }

JobState state_arg(const std::string& s, bool allow_all_states = true) {
  const auto st = parse_state(s);
  if (!st || (!allow_all_states && *st != JobState::completed && *st != JobState::dead)) {
    bad_usage(fmt::format("invalid state '{}': expected {}", s,
                          allow_all_states ? "pending, processing, failed, completed (or done), dead"
                                           : "completed (or done) or dead"));
  }
  return *st;
}

// A check on a numeric option that says in words what it expects (CLI11's own
// NonNegativeNumber quotes the largest double, and a failed conversion says "Could not
// convert"). `what` completes "expected ...".
CLI::Validator number_check(bool integer, double min, const char* what) {
  return CLI::Validator(
      [=](std::string& s) {
        char* end = nullptr;
        errno = 0;
        const double v =
            integer ? static_cast<double>(std::strtoll(s.c_str(), &end, 10)) : std::strtod(s.c_str(), &end);
        const bool ok = !s.empty() && *end == '\0' && errno == 0 && std::isfinite(v) && v >= min;
        return ok ? std::string() : fmt::format("expected {}, got '{}'", what, s);
      },
      "");
}

std::string shorten(std::string s, std::size_t n) {
  for (char& c : s) {
    if (c == '\n' || c == '\t' || c == '\r') {
      c = ' ';
    }
  }
  if (s.size() > n) {
    s = s.substr(0, n - 3) + "...";
  }
  return s;
}

void print_jobs(const std::vector<StoredJob>& jobs, bool json) {
  if (json) {
    Json arr = Json::array();
    for (const StoredJob& sj : jobs) {
      arr.push_back(sj.job.json());
    }
    out(arr.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
    return;
  }
  if (jobs.empty()) {
    return;
  }
  std::size_t w = 2;
  for (const StoredJob& sj : jobs) {
    w = std::max(w, sj.job.id().size());
  }
  std::string text = fmt::format("{:<{}}  {:<10}  {:>4}  {:>5}  {:<20}  {}\n", "ID", w, "STATE", "PRI",
                                 "TRIES", "CREATED", "COMMAND / LAST ERROR");
  for (const StoredJob& sj : jobs) {
    std::string created = sj.job.text("created_at");
    if (const auto t = parse_time(created)) {
      created = format_time(*t).substr(0, 19) + "Z";
    }
    std::string what = shorten(sj.job.command(), 60);
    if (const std::string bad = sj.job.text("invalid"); !bad.empty()) {
      what = "INVALID: " + shorten(bad, 80); // a damaged or foreign file, listed as what it is
    } else if (const std::string err = sj.job.text("last_error"); !err.empty() && sj.state != JobState::completed) {
      what += "  [" + shorten(err, 40) + "]";
    }
    text += fmt::format("{:<{}}  {:<10}  {:>4}  {:>2}/{:<2}  {:<20}  {}\n", sj.job.id(), w,
                        state_name(sj.state), sj.job.priority(), sj.job.attempts(),
                        sj.job.max_runs(), created, what);
  }
  out(text);
}

Json status_json(const Spool& spool) {
  const auto c = spool.counts();
  Json j = Json::object();
  for (JobState s : k_all_states) {
    j[std::string(state_name(s))] = c[static_cast<std::size_t>(s)];
  }
  j["workers"] = live_worker_count(spool);
  return j;
}

std::string read_stdin() { return sys::read_all(STDIN_FILENO, "standard input"); }

} // namespace

int exec_serve_helper(const std::filesystem::path&, const std::string&, const std::string&, int, char** argv) {
  std::vector<std::filesystem::path> candidates;
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  const std::filesystem::path dir =
      std::filesystem::path(n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : std::string("/usr/bin/x")).parent_path();
  candidates.push_back(dir / "queuectl-serve");  // the build tree
  candidates.push_back(dir / k_serve_helper);    // installed
  for (const auto& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) {
      ::execv(c.c_str(), argv);
      throw_errno("cannot run", c.string());
    }
  }
  fail(fmt::format("'serve' needs '{}', which is not installed", candidates.back().lexically_normal().string()));
}

int run(int argc, char** argv, const ServeFn& serve_fn) {
  CLI::App app{"queuectl: a background job queue in a spool directory", "queuectl"};
  app.set_version_flag("--version", std::string("queuectl ") + k_version);
  app.fallthrough();
  app.require_subcommand(1);
  app.footer("Run 'queuectl COMMAND --help' for a command's options; see queuectl(1).");
  std::string spool_flag;
  auto* spool_opt = app.add_option("--spool", spool_flag, "spool directory (default: $QUEUECTL_SPOOL, else "
                                                          "/var/spool/queuectl for root, else ~/.local/state/queuectl)")
                        ->type_name("DIR");

  const CLI::Validator integer = number_check(true, -INFINITY, "an integer");
  const CLI::Validator count_check = number_check(true, 0, "an integer >= 0");
  const CLI::Validator seconds = number_check(false, 0, "a number of seconds >= 0");

  // enqueue
  auto* enq = app.add_subcommand("enqueue", "add a job: JSON argument, '-' for JSON lines on stdin, or --command");
  std::string enq_json;
  JobOverrides ov;
  std::string o_command, o_id, o_run_at;
  std::int64_t o_priority = 0, o_max_retries = 0;
  double o_timeout = 0, o_delay = 0;
  enq->add_option("json", enq_json, "the job as a JSON object, or - to read one object per line from stdin")
      ->type_name("JSON|-");
  auto* c_opt = enq->add_option("--command", o_command, "shell command to run (instead of a JSON job)")->type_name("CMD");
  auto* id_opt = enq->add_option("--id", o_id, "job id (default: generated, time-ordered)")->type_name("ID");
  auto* p_opt = enq->add_option("--priority", o_priority, "higher runs first (default: config priority)")
                    ->type_name("N")->check(integer);
  auto* r_opt = enq->add_option("--max-retries", o_max_retries, "retries after the first failure")
                    ->type_name("N")->check(count_check);
  auto* t_opt = enq->add_option("--timeout", o_timeout, "seconds before the job is killed (0 = none)")
                    ->type_name("SEC")->check(seconds);
  auto* at_opt = enq->add_option("--run-at", o_run_at, "do not run before this RFC 3339 time")->type_name("TIME");
  auto* d_opt = enq->add_option("--delay", o_delay, "do not run for this many seconds")
                    ->type_name("SEC")->check(seconds);
  at_opt->excludes(d_opt);
  std::string o_cwd;
  std::vector<std::string> o_env;
  auto* cwd_opt = enq->add_option("--cwd", o_cwd, "directory to run in (relative: to the current one)")
                      ->type_name("DIR");
  enq->add_option("--env", o_env, "set an environment variable for the job (repeatable)")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);

  // status, list, show
  bool json = false;
  auto* status = app.add_subcommand("status", "count jobs per state and live workers");
  status->add_flag("--json", json, "print one JSON object");
  auto* list = app.add_subcommand("list", "list jobs, oldest first");
  std::string list_state;
  std::size_t limit = 0;
  list->add_option("--state", list_state, "only this state: pending, processing, failed, completed (done), dead")
      ->type_name("STATE");
  auto* limit_opt = list->add_option("--limit", limit, "print at most N jobs")->type_name("N")->check(count_check);
  list->add_flag("--json", json, "print a JSON array of the jobs as stored");
  auto* show = app.add_subcommand("show", "print a job's JSON");
  std::string job_id;
  show->add_option("id", job_id, "job id")->required()->type_name("ID");
  show->add_flag("--json", json, "print JSON (the default; accepted for scripts)");

  auto* logs = app.add_subcommand("logs", "print a job's output log");
  bool follow = false;
  logs->add_option("id", job_id, "job id")->required()->type_name("ID");
  logs->add_flag("-f,--follow", follow, "keep printing new output until the job is completed or dead");

  auto* cancel = app.add_subcommand("cancel", "move a pending or failed job to the dead-letter queue");
  cancel->add_option("id", job_id, "job id")->required()->type_name("ID");

  double older_than = 0;
  auto* purge = app.add_subcommand("purge", "delete completed or dead jobs with their logs");
  std::string purge_state;
  purge->add_option("--state", purge_state, "completed (or done) or dead")->required()->type_name("STATE");
  auto* purge_age = purge->add_option("--older-than", older_than, "only jobs last updated more than SEC seconds ago")
                        ->type_name("SEC")->check(seconds);

  // dlq
  auto* dlq = app.add_subcommand("dlq", "the dead-letter queue: list, retry, purge");
  dlq->require_subcommand(1);
  auto* dlq_list = dlq->add_subcommand("list", "list dead jobs, oldest first");
  dlq_list->add_flag("--json", json, "print a JSON array of the jobs as stored");
  auto* dlq_retry = dlq->add_subcommand("retry", "move dead jobs back to pending with attempts reset");
  std::vector<std::string> retry_ids;
  bool retry_all = false;
  auto* ids_opt = dlq_retry->add_option("ids", retry_ids, "job ids")->type_name("ID...");
  auto* all_opt = dlq_retry->add_flag("--all", retry_all, "retry every dead job");
  ids_opt->excludes(all_opt);
  auto* dlq_purge = dlq->add_subcommand("purge", "delete dead jobs (and their logs and original files)");
  auto* dlq_age = dlq_purge->add_option("--older-than", older_than, "only jobs last updated more than SEC seconds ago")
                      ->type_name("SEC")->check(seconds);

  // config
  auto* config = app.add_subcommand("config", "show and change the spool's settings");
  config->require_subcommand(1);
  std::string key, value;
  auto* cfg_list = config->add_subcommand("list", "print every setting, defaults included");
  cfg_list->add_flag("--json", json, "print one JSON object");
  auto* cfg_get = config->add_subcommand("get", "print one setting's value");
  cfg_get->add_option("key", key, "max-retries, backoff-base, backoff-max, timeout or priority")->required();
  auto* cfg_set = config->add_subcommand("set", "change a setting");
  cfg_set->add_option("key", key, "setting name")->required();
  cfg_set->add_option("value", value, "new value")->required();
  auto* cfg_unset = config->add_subcommand("unset", "return a setting to its default");
  cfg_unset->add_option("key", key, "setting name")->required();

  // worker
  auto* worker = app.add_subcommand("worker", "run, stop and inspect worker processes");
  worker->require_subcommand(1);
  auto* w_start = worker->add_subcommand("start", "run N workers under a supervisor in the foreground");
  int count = 1;
  bool detach = false;
  w_start->add_option("-c,--count", count, "number of worker processes")->type_name("N")->check(CLI::Range(1, 1024));
  w_start->add_flag("-d,--detach", detach, "run in the background; print the supervisor's and workers' PIDs");
  auto* w_stop = worker->add_subcommand("stop", "stop every worker on the spool and wait for them");
  bool now = false;
  w_stop->add_flag("--now", now, "kill running jobs (counted as failed attempts) instead of waiting for them");
  auto* w_status = worker->add_subcommand("status", "list worker processes and the job each runs");
  w_status->add_flag("--json", json, "print a JSON array");

  auto* metrics = app.add_subcommand("metrics", "print metrics in the Prometheus text format");
  auto* serve = app.add_subcommand("serve", "serve the REST API, /metrics and the web dashboard");
  std::string listen = "127.0.0.1:8080", token_file;
  serve->add_option("--listen", listen, "address and port to listen on (default 127.0.0.1:8080; port 0: any free port)")
      ->type_name("HOST:PORT");
  serve->add_option("--token-file", token_file, "require the token in this file for every state-changing request")
      ->type_name("FILE");

  try {
    app.parse(argc, argv);
    if (argc < 2) {
      bad_usage("missing command; see 'queuectl --help'");
    }
    const std::filesystem::path root =
        Spool::resolve(spool_opt->count() > 0 ? std::optional<std::string>(spool_flag) : std::nullopt);

    // Bad usage is reported before the spool is looked at (SPEC section 5).
    if (enq->parsed()) {
      if (c_opt->count()) ov.command = o_command;
      if (id_opt->count()) ov.id = o_id;
      if (p_opt->count()) ov.priority = o_priority;
      if (r_opt->count()) ov.max_retries = o_max_retries;
      if (t_opt->count()) ov.timeout = o_timeout;
      if (at_opt->count()) {
        const auto t = parse_time(o_run_at);
        if (!t) {
          bad_usage(fmt::format("invalid --run-at '{}': expected an RFC 3339 time such as 2026-11-23T05:00:00Z", o_run_at));
        }
        ov.run_at = *t;
      }
      if (d_opt->count()) {
        ov.run_at = later_by(now_micros(), o_delay);
        if (*ov.run_at == k_latest_time) {
          bad_usage(fmt::format("--delay {} is too far in the future: the latest time a job can run at is {}", o_delay,
                                format_time(k_latest_time)));
        }
      }
      if (cwd_opt->count()) {
        std::error_code ec;
        auto dir = std::filesystem::absolute(o_cwd, ec).lexically_normal();
        if (!dir.has_filename() && dir != dir.root_path()) {
          dir = dir.parent_path(); // "/srv/app/" and "." name the directory without a trailing slash
        }
        if (o_cwd.empty() || ec || !std::filesystem::is_directory(dir, ec)) {
          bad_usage(fmt::format("--cwd '{}': no such directory", o_cwd));
        }
        ov.cwd = dir.string();
      }
      for (const std::string& kv : o_env) {
        const auto eq = kv.find('=');
        if (eq == 0 || eq == std::string::npos) {
          bad_usage(fmt::format("--env '{}': expected NAME=VALUE", kv));
        }
        if (!valid_env_name(kv.substr(0, eq))) {
          bad_usage(fmt::format("--env '{}': '{}' is not a variable name (letters, digits and '_', not starting "
                                "with a digit)",
                                kv, kv.substr(0, eq)));
        }
        ov.env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
      }
      if (ov.id && !valid_id(*ov.id)) {
        bad_usage(fmt::format("invalid --id '{}': {}", *ov.id, k_id_rule));
      }
    }
    for (const std::string& id : (show->parsed() || logs->parsed() || cancel->parsed()) ? std::vector{job_id} : retry_ids) {
      if (!valid_id(id)) {
        bad_usage(fmt::format("invalid job id '{}': {}", id, k_id_rule));
      }
    }
    const bool by_state = list->parsed() && !list_state.empty();
    const JobState list_what = by_state ? state_arg(list_state) : JobState::pending;
    const JobState purge_what = purge->parsed() ? state_arg(purge_state, false) : JobState::dead;
    if (dlq_retry->parsed() && !retry_all && retry_ids.empty()) {
      bad_usage("dlq retry needs job ids or --all");
    }
    if (cfg_get->parsed() || cfg_unset->parsed()) {
      Config::canonical_key(key); // an unknown key is bad usage
    }
    if (cfg_set->parsed()) {
      Config().set(key, value); // so is a bad value
    }

    // Only the commands that write create a spool, and only once their input has passed.
    const bool writes = enq->parsed() || w_start->parsed() || cfg_set->parsed();
    std::string enq_input;
    Json enq_base;
    if (enq->parsed()) {
      if (enq_json == "-") {
        enq_input = read_stdin();
        if (!std::filesystem::exists(root)) {
          check_batch(enq_input, ov); // with the defaults a new spool would have
        }
      } else {
        if (!enq_json.empty()) {
          enq_base = Job::parse(enq_json).json();
        } else if (!ov.command) {
          bad_usage("nothing to enqueue: give a JSON job, '-', or --command CMD");
        }
        make_job(enq_base, ov, JobDefaults(), now_micros()); // refused here, before any spool is made
      }
    }
    Spool spool = writes ? Spool::open(root) : Spool::open_existing(root);

    if (enq->parsed()) {
      if (enq_json == "-") {
        std::string ids;
        for (const std::string& id : enqueue_lines(spool, enq_input, ov)) {
          ids += id + "\n";
        }
        out(ids);
      } else {
        out(enqueue_one(spool, enq_base, ov) + "\n");
      }
    } else if (status->parsed()) {
      const Json j = status_json(spool);
      if (json) {
        out(j.dump() + "\n");
      } else {
        std::string text;
        for (const auto& [k, v] : j.items()) {
          text += fmt::format("{:<11} {}\n", k, v.get<std::size_t>());
        }
        out(text);
      }
    } else if (list->parsed()) {
      const std::size_t max = limit_opt->count() > 0 ? limit : SIZE_MAX;
      print_jobs(by_state ? spool.list(list_what, max) : spool.list_all(max), json);
    } else if (show->parsed()) {
      out(spool.load(job_id).job.json().dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
    } else if (logs->parsed()) {
      print_log(spool, job_id, follow, STDOUT_FILENO);
    } else if (cancel->parsed()) {
      cancel_job(spool, job_id);
      out(fmt::format("cancelled {}\n", job_id));
    } else if (purge->parsed()) {
      const auto n = spool.purge(purge_what, purge_age->count() ? std::optional<double>(older_than) : std::nullopt);
      out(fmt::format("purged {} {} job{}\n", n, state_name(purge_what), n == 1 ? "" : "s"));
    } else if (dlq_list->parsed()) {
      print_jobs(spool.list(JobState::dead), json);
    } else if (dlq_retry->parsed()) {
      if (retry_all) {
        for (const StoredJob& sj : spool.list(JobState::dead)) {
          if (!sj.job.json().contains("original_file")) {
            retry_ids.push_back(sj.job.id());
          }
        }
      }
      for (const std::string& id : retry_ids) {
        retry_dead_job(spool, id);
        out(fmt::format("retried {}\n", id));
      }
    } else if (dlq_purge->parsed()) {
      const auto n = spool.purge(JobState::dead, dlq_age->count() ? std::optional<double>(older_than) : std::nullopt);
      out(fmt::format("purged {} dead job{}\n", n, n == 1 ? "" : "s"));
    } else if (cfg_list->parsed()) {
      const Config c = spool.load_config();
      if (json) {
        Json j = Json::object();
        for (const auto& [k, v] : c.list()) {
          j[k] = v;
        }
        out(j.dump() + "\n");
      } else {
        std::string text;
        for (const auto& [k, v] : c.list()) {
          text += fmt::format("{} {}\n", k, format_value(v));
        }
        out(text);
      }
    } else if (cfg_get->parsed()) {
      out(format_value(spool.load_config().get(key)) + "\n");
    } else if (cfg_set->parsed()) {
      Config c = spool.load_config();
      c.set(key, value);
      spool.save_config(c);
    } else if (cfg_unset->parsed()) {
      Config c = spool.load_config();
      if (c.unset(key)) {
        spool.save_config(c);
      }
    } else if (w_start->parsed()) {
      if (detach) {
        std::string text;
        for (pid_t pid : start_detached(spool.root(), count)) {
          text += fmt::format("{}\n", pid);
        }
        out(text);
      } else {
        return run_supervisor(spool.root(), count, -1);
      }
    } else if (w_stop->parsed()) {
      const std::size_t n = stop_all(spool, now);
      out(n == 0 ? std::string("no workers were running\n") : fmt::format("stopped {} worker process{}\n", n, n == 1 ? "" : "es"));
    } else if (serve->parsed()) {
      return serve_fn(spool.root(), listen, token_file, argc, argv);
    } else if (metrics->parsed()) {
      out(prometheus_metrics(spool));
    } else if (w_status->parsed()) {
      const auto recs = live_records(spool);
      if (json) {
        Json arr = Json::array();
        for (const WorkerInfo& w : recs) {
          if (w.kind == RecordKind::worker) {
            arr.push_back({{"pid", w.pid}, {"supervisor", w.supervisor}, {"since", w.since},
                           {"job", w.job ? Json(*w.job) : Json(nullptr)}});
          }
        }
        out(arr.dump(2) + "\n");
      } else {
        std::string text;
        for (const WorkerInfo& w : recs) {
          if (w.kind == RecordKind::worker) {
            text += fmt::format("{:<8} {:<11} {:<28} {}\n", w.pid, w.supervisor, w.since, w.job.value_or("-"));
          }
        }
        out(text.empty() ? std::string("no workers running\n")
                         : fmt::format("{:<8} {:<11} {:<28} {}\n", "PID", "SUPERVISOR", "SINCE", "JOB") + text);
      }
    }
    return 0;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    if (msg.empty()) {
      msg = e.get_name();
    }
    if (msg.rfind("A subcommand is required", 0) == 0) {
      msg = "missing command";
      for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--spool") {
          ++i;
        } else if (!a.empty() && a[0] != '-') {
          msg = fmt::format("unknown command '{}'", a);
          break;
        }
      }
    }
    fmt::print(stderr, "queuectl: error: {} (see 'queuectl --help')\n", msg);
    return static_cast<int>(Exit::usage);
  } catch (const Error& e) {
    fmt::print(stderr, "queuectl: error: {}\n", e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    fmt::print(stderr, "queuectl: internal error: {}\n", e.what());
    return static_cast<int>(Exit::failure);
  }
}

} // namespace queuectl::cli
