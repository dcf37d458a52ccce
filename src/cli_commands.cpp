#include "queuectl/cli_commands.hpp"

#include "queuectl/cli_text.hpp"
#include "queuectl/clock.hpp"
#include "queuectl/config.hpp"
#include "queuectl/error.hpp"
#include "queuectl/logs.hpp"
#include "queuectl/metrics.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>

namespace queuectl::cli {

namespace {

std::string plural(std::size_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

// A check on a numeric option that says in words what it expects (CLI11's own says
// "Could not convert" or quotes the largest double).
CLI::Validator number(bool integer, double min, const char* what, double max = INFINITY) {
  return CLI::Validator(
      [=](std::string& s) {
        char* end = nullptr;
        errno = 0;
        const double v =
            integer ? static_cast<double>(std::strtoll(s.c_str(), &end, 10)) : std::strtod(s.c_str(), &end);
        const bool ok = !s.empty() && *end == '\0' && errno == 0 && std::isfinite(v) && v >= min && v <= max;
        return ok ? std::string() : fmt::format("expected {}, got '{}'", what, s);
      },
      "");
}
const CLI::Validator k_integer = number(true, -INFINITY, "an integer");
const CLI::Validator k_count = number(true, 0, "an integer >= 0");

// A duration ("90", "90s", "5m", "2h30m", "1d"), handed on as its number of seconds.
const CLI::Validator k_duration(
    [](std::string& s) {
      const auto secs = parse_duration(s);
      if (!secs) {
        return fmt::format("expected a duration such as 90, 90s, 5m, 2h30m or 1d, got '{}'", s);
      }
      s = fmt::format("{}", *secs);
      return std::string();
    },
    "");

// A time: RFC 3339, or local ("14:30", "tomorrow 03:00", "2026-12-01 03:00"), handed on
// in RFC 3339 UTC.
const CLI::Validator k_time(
    [](std::string& s) {
      const auto t = parse_user_time(s, now_micros());
      if (!t) {
        return fmt::format("expected a time such as 14:30, 'tomorrow 03:00', '2026-12-01 03:00' (local) or "
                           "2026-12-01T03:00:00Z, got '{}'",
                           s);
      }
      s = format_time(*t);
      return std::string();
    },
    "");

std::optional<JobState> state_of(const std::string& s, bool finished_only) {
  if (s.empty()) {
    return std::nullopt;
  }
  const auto st = parse_state(s);
  if (!st || (finished_only && *st != JobState::completed && *st != JobState::dead)) {
    bad_usage(fmt::format("invalid state '{}': expected {}", s,
                          finished_only ? "completed (or done) or dead"
                                        : "pending, held, processing, failed, completed (or done), dead"));
  }
  return st;
}

void enqueue_options(CLI::App& c, Args& a) {
  c.add_option("json", a.enq.json, "the job as a JSON object, or - to read one object per line from stdin")
      ->type_name("JSON|-");
  c.add_option("--command", a.enq.command, "shell command to run (instead of a JSON job)")->type_name("CMD");
  c.add_option("--id", a.enq.id, "job id (default: generated, time-ordered)")->type_name("NEW-ID");
  c.add_option("--priority", a.enq.priority, "higher runs first (default: config priority)")
      ->type_name("N")
      ->check(k_integer);
  c.add_option("--max-retries", a.enq.max_retries, "retries after the first failure (default: config max-retries)")
      ->type_name("N")
      ->check(k_count);
  c.add_option("--timeout", a.enq.timeout, "kill the job after this long: 90, 90s, 5m, 2h30m, 1d (0 = never)")
      ->type_name("DURATION")
      ->transform(k_duration);
  auto* at =
      c.add_option("--run-at", a.enq.run_at,
                   "do not run before this time: 14:30, 'tomorrow 03:00', '2026-12-01 03:00' (local), or RFC 3339")
          ->type_name("TIME")
          ->transform(k_time);
  c.add_option("--delay", a.enq.delay, "do not run for this long: 90, 90s, 5m, 2h30m, 1d")
      ->type_name("DURATION")
      ->transform(k_duration)
      ->excludes(at);
  c.add_option("--cwd", a.enq.cwd, "directory to run in (relative: to the current one)")->type_name("DIR");
  c.add_option("--env", a.enq.env, "set an environment variable for the job (repeatable)")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);
  c.add_option("--queue", a.enq.queue, "the job's queue (default: default)")->type_name("NAME");
  c.add_option("--after", a.enq.after, "start only once job ID has completed (repeatable)")
      ->type_name("ID")
      ->allow_extra_args(false);
  c.add_option("--tag", a.enq.tags, "a label for the job (repeatable)")->type_name("TAG")->allow_extra_args(false);
  c.add_flag("--hold", a.enq.hold, "enqueue it held: it does not run until 'queuectl release'");
  c.add_flag("--cluster", a.cluster,
             "publish to the cluster's stream (see 'queuectl cluster join') instead of this spool's pending/");
  c.add_flag("--wait", a.wait, "print the id, then wait for the job and exit as 'queuectl wait' does");
}

// Prints each id's line, or its error on stderr, for commands that take several ids:
// all are tried; exit 1 when one failed.
int for_each_id(const std::vector<std::string>& ids, const char* done,
                const std::function<void(const std::string&)>& fn) {
  int rc = 0;
  for (const std::string& id : ids) {
    try {
      fn(id);
      out(fmt::format("{} {}\n", done, id));
    } catch (const Error& e) {
      say_error(e.what());
      rc = static_cast<int>(e.code());
    }
  }
  return rc;
}

void ids_option(CLI::App& c, Args& a) {
  c.add_option("ids", a.ids, "job ids")->required()->type_name("ID...");
}

int wait_and_say(const Spool& spool, const std::vector<std::string>& ids, std::optional<double> timeout) {
  std::vector<std::string> unfinished;
  const int rc = cmd::wait_jobs(spool, ids, timeout, &unfinished);
  if (rc == 124) {
    say_unfinished(*timeout, unfinished);
  }
  return rc;
}

void id_option(CLI::App& c, Args& a) {
  c.add_option("id", a.id, "job id")->required()->type_name("ID");
}
void json_flag(CLI::App& c, Args& a, const char* what) {
  c.add_flag("--json", a.json, what);
}
void utc_flag(CLI::App& c, Args& a) {
  c.add_flag("--utc", a.utc, "show times as RFC 3339 UTC instead of relative to now (\"3m ago\", \"in 2h\")");
}
TableStyle table_style(const Args& a) {
  return TableStyle{a.utc, now_micros(), use_colour(STDOUT_FILENO)};
}
void older_option(CLI::App& c, Args& a) {
  c.add_option("--older-than", a.older_than, "only jobs last updated longer ago than this: 3600, 90m, 7d")
      ->type_name("DURATION")
      ->transform(k_duration);
}

const Command k_commands[] = {
    {"help", "print the help of queuectl or of a command: 'queuectl help worker start'", false,
     [](CLI::App& c, Args& a) { c.add_option("command", a.words, "the command's words")->type_name("COMMAND..."); },
     [](Call&) { return 0; }}, // answered in cli.cpp, which holds the parser
    {"completion", "print the shell completion script for bash, zsh or fish", false,
     [](CLI::App& c, Args& a) { c.add_option("shell", a.shell, "bash, zsh or fish")->required()->type_name("SHELL"); },
     [](Call&) { return 0; }}, // answered in cli.cpp: no spool needed
    {"enqueue", "add a job: JSON argument, '-' for JSON lines on stdin, or --command", true, enqueue_options,
     [](Call& c) {
       // Ctrl-C while a batch is written removes it; once published, its ids are printed.
       std::optional<sys::HeldInterrupts> held;
       std::optional<ProgressLine> progress;
       if (c.a.enq.json == "-") {
         held.emplace();
         progress.emplace("enqueue");
         c.a.enq_checked->progress = [&](std::size_t done, std::size_t total) {
           progress->update(done, total, "jobs written");
         };
       }
       const JobIds ids = cmd::enqueue(c.spool, *c.a.enq_checked);
       progress.reset();
       out_ids(ids);
       held.reset();
       if (!c.a.wait) {
         return 0;
       }
       std::vector<std::string> waited;
       for (std::size_t i = 0; i < ids.size(); ++i) {
         waited.push_back(ids[i]);
       }
       return wait_and_say(c.spool, waited, std::nullopt);
     },
     [](Args& a, bool new_spool) {
       a.enq_checked = cmd::prepare_enqueue(
           a.enq, [] { return sys::read_all(STDIN_FILENO, "standard input"); }, new_spool);
     },
     [](const Args& a) { return a.cluster; }},
    {"status", "count jobs per state and live workers", false,
     [](CLI::App& c, Args& a) { json_flag(c, a, "print one JSON object"); },
     [](Call& c) {
       const Json j = cmd::status(c.spool);
       out(c.a.json ? j.dump() + "\n" : status_lines(j, use_colour(STDOUT_FILENO)));
       return 0;
     }},
    {"list", "list jobs, oldest first", false,
     [](CLI::App& c, Args& a) {
       c.add_option("--state", a.state, "only this state: pending, held, processing, failed, completed (done), dead")
           ->type_name("STATE");
       c.add_option("--limit", a.limit, "print at most N jobs")->type_name("N")->check(k_count);
       c.add_option("--queue", a.queue, "only jobs of this queue")->type_name("NAME");
       c.add_option("--tag", a.tag, "only jobs with this tag")->type_name("TAG");
       utc_flag(c, a);
       json_flag(c, a, "print a JSON array of the jobs as stored");
     },
     [](Call& c) {
       const auto state = state_of(c.a.state, false);
       const auto jobs = cmd::list(c.spool, cmd::JobFilter{state, c.a.queue, c.a.tag, std::nullopt, c.a.limit});
       if (c.a.json) {
         out_json(cmd::jobs_json(jobs));
       } else if (jobs.empty() && sys::is_terminal(STDOUT_FILENO)) { // a pipe gets nothing to parse
         out(fmt::format("no {}jobs{}{}\n", state ? std::string(state_name(*state)) + " " : "",
                         c.a.queue ? " in queue '" + *c.a.queue + "'" : "",
                         c.a.tag ? " tagged '" + *c.a.tag + "'" : ""));
       } else {
         out(job_table(jobs, table_style(c.a), [&](const StoredJob& sj) { return cmd::waits_for(c.spool, sj); }));
       }
       return 0;
     },
     [](Args& a, bool) {
       state_of(a.state, false);
       if (a.queue) {
         cmd::check_queues({*a.queue});
       }
     }},
    {"show", "print a job's JSON", false,
     [](CLI::App& c, Args& a) {
       id_option(c, a);
       json_flag(c, a, "print JSON (the default; accepted for scripts)");
       c.add_flag("--cluster", a.cluster, "print the job's last known record in the cluster, and the host that ran it");
     },
     [](Call& c) {
       out_json(cmd::show(c.spool, c.a.id));
       return 0;
     },
     [](Args& a, bool) { check_ids({a.id}); }, [](const Args& a) { return a.cluster; }},
    {"logs", "print a job's output log", false,
     [](CLI::App& c, Args& a) {
       id_option(c, a);
       c.add_flag("-f,--follow", a.follow,
                  "keep printing new output until the job is completed or dead, then exit as 'queuectl wait' does");
     },
     [](Call& c) {
       print_log(c.spool, c.a.id, c.a.follow, STDOUT_FILENO);
       // Followed to its end, the job's outcome is the exit status, as for 'wait'.
       return c.a.follow ? cmd::wait_jobs(c.spool, {c.a.id}, std::nullopt, nullptr) : 0;
     },
     [](Args& a, bool) { check_ids({a.id}); }},
    {"cancel", "move jobs to the dead-letter queue; a running job's command is ended first", false, ids_option,
     [](Call& c) {
       return for_each_id(c.a.ids, "cancelled", [&](const std::string& id) { cmd::cancel(c.spool, id); });
     },
     [](Args& a, bool) { check_ids(a.ids); }},
    {"retry", "run completed or dead jobs again (back to pending, attempts 0)", false, ids_option,
     [](Call& c) { return for_each_id(c.a.ids, "retried", [&](const std::string& id) { cmd::retry(c.spool, id); }); },
     [](Args& a, bool) { check_ids(a.ids); }},
    {"hold", "keep pending or failed jobs from starting until released", false, ids_option,
     [](Call& c) { return for_each_id(c.a.ids, "held", [&](const std::string& id) { cmd::hold(c.spool, id); }); },
     [](Args& a, bool) { check_ids(a.ids); }},
    {"release", "let held jobs run again", false, ids_option,
     [](Call& c) {
       return for_each_id(c.a.ids, "released", [&](const std::string& id) { cmd::release(c.spool, id); });
     },
     [](Args& a, bool) { check_ids(a.ids); }},
    {"wait", "wait until jobs are completed or dead; exit with the outcome", false,
     [](CLI::App& c, Args& a) {
       ids_option(c, a);
       c.add_option("--timeout", a.wait_timeout, "give up after this long: 30, 90s, 5m (exit 124)")
           ->type_name("DURATION")
           ->transform(k_duration);
       c.add_flag("--cluster", a.cluster, "wait for jobs that run on any host of the cluster");
     },
     [](Call& c) { return wait_and_say(c.spool, c.a.ids, c.a.wait_timeout); }, [](Args& a, bool) { check_ids(a.ids); },
     [](const Args& a) { return a.cluster; }},
    {"purge", "delete completed or dead jobs with their logs", false,
     [](CLI::App& c, Args& a) {
       auto* ids = c.add_option("ids", a.ids, "completed or dead jobs to delete")->type_name("ID...");
       c.add_option("--state", a.state, "every job of this state: completed (or done) or dead")
           ->type_name("STATE")
           ->excludes(ids);
       older_option(c, a);
     },
     [](Call& c) {
       if (!c.a.ids.empty()) {
         return for_each_id(c.a.ids, "purged", [&](const std::string& id) { cmd::purge_job(c.spool, id); });
       }
       const JobState s = *state_of(c.a.state, true);
       const std::size_t n = cmd::purge(c.spool, s, c.a.older_than);
       out(fmt::format("purged {} {} job{}\n", n, state_name(s), n == 1 ? "" : "s"));
       return 0;
     },
     [](Args& a, bool) {
       check_ids(a.ids);
       if (!a.ids.empty()) {
         if (a.older_than) {
           bad_usage("purge: --older-than goes with --state, not with job ids");
         }
         return;
       }
       if (a.state.empty()) {
         bad_usage("purge needs job ids or --state completed|dead");
       }
       state_of(a.state, true);
     }},
    {"dlq", "the dead-letter queue: list, retry, purge", false, nullptr, nullptr},
    {"dlq list", "list dead jobs, oldest first", false,
     [](CLI::App& c, Args& a) {
       utc_flag(c, a);
       json_flag(c, a, "print a JSON array of the jobs as stored");
     },
     [](Call& c) {
       const auto jobs = cmd::list(c.spool, JobState::dead, SIZE_MAX);
       if (c.a.json) {
         out_json(cmd::jobs_json(jobs));
       } else if (jobs.empty() && sys::is_terminal(STDOUT_FILENO)) {
         out("the dead-letter queue is empty\n");
       } else {
         out(job_table(jobs, table_style(c.a)));
       }
       return 0;
     }},
    {"dlq retry", "move dead jobs back to pending with attempts reset", false,
     [](CLI::App& c, Args& a) {
       auto* ids = c.add_option("ids", a.ids, "job ids")->type_name("ID...");
       c.add_flag("--all", a.all, "retry every dead job")->excludes(ids);
     },
     [](Call& c) {
       std::string text;
       for (const std::string& id : cmd::retry_dead(c.spool, c.a.ids, c.a.all)) {
         text += fmt::format("retried {}\n", id);
       }
       out(text);
       return 0;
     },
     [](Args& a, bool) {
       check_ids(a.ids);
       if (!a.all && a.ids.empty()) {
         bad_usage("dlq retry needs job ids or --all");
       }
     }},
    {"dlq purge", "delete dead jobs (and their logs and original files)", false, older_option,
     [](Call& c) {
       out(fmt::format("purged {}\n",
                       plural(cmd::purge(c.spool, JobState::dead, c.a.older_than), "dead job", "dead jobs")));
       return 0;
     }},
    {"config", "show and change the spool's settings", false, nullptr, nullptr},
    {"config list", "print every setting, defaults included", false,
     [](CLI::App& c, Args& a) { json_flag(c, a, "print one JSON object"); },
     [](Call& c) {
       const auto settings = cmd::config_list(c.spool);
       if (!c.a.json) {
         out(config_lines(settings));
         return 0;
       }
       Json j = Json::object();
       for (const auto& [k, v] : settings) {
         j[k] = v;
       }
       out(j.dump() + "\n");
       return 0;
     }},
    {"config get", "print one setting's value", false,
     [](CLI::App& c, Args& a) {
       c.add_option("key", a.key, "max-retries, backoff-base, backoff-max, timeout or priority")
           ->required()
           ->type_name("KEY");
     },
     [](Call& c) {
       out(format_value(cmd::config_get(c.spool, c.a.key)) + "\n");
       return 0;
     },
     [](Args& a, bool) { cmd::check_config(a.key, std::nullopt); }},
    {"config set", "change a setting", true,
     [](CLI::App& c, Args& a) {
       c.add_option("key", a.key, "setting name")->required()->type_name("KEY");
       c.add_option("value", a.value, "new value")->required()->type_name("VALUE");
     },
     [](Call& c) {
       cmd::config_set(c.spool, c.a.key, c.a.value);
       return 0;
     },
     [](Args& a, bool) { cmd::check_config(a.key, a.value); }},
    {"config unset", "return a setting to its default", false,
     [](CLI::App& c, Args& a) { c.add_option("key", a.key, "setting name")->required()->type_name("KEY"); },
     [](Call& c) {
       cmd::config_unset(c.spool, c.a.key);
       return 0;
     },
     [](Args& a, bool) { cmd::check_config(a.key, std::nullopt); }},
    {"queue", "named queues: list them, limit how many jobs of one run at once, pause them", false, nullptr, nullptr},
    {"queue list", "list queues with their counts per state, limit and pause", false,
     [](CLI::App& c, Args& a) { json_flag(c, a, "print a JSON array"); },
     [](Call& c) {
       const Json queues = cmd::queue_list(c.spool);
       c.a.json ? out_json(queues) : out(queue_table(queues));
       return 0;
     }},
    {"queue set", "set a queue's concurrency limit", true,
     [](CLI::App& c, Args& a) {
       c.add_option("name", a.name, "queue name")->required()->type_name("NAME");
       c.add_option("--concurrency", a.concurrency, "at most N of its jobs run at once, over the whole spool")
           ->required()
           ->type_name("N")
           ->check(number(true, 1, "an integer >= 1"));
     },
     [](Call& c) {
       cmd::queue_concurrency(c.spool, c.a.name, c.a.concurrency);
       return 0;
     },
     [](Args& a, bool) { cmd::check_queues({a.name}); }},
    {"queue unset", "remove a queue's concurrency limit", false,
     [](CLI::App& c, Args& a) {
       c.add_option("name", a.name, "queue name")->required()->type_name("NAME");
       c.add_flag("--concurrency", a.unset_concurrency, "remove the limit")->required();
     },
     [](Call& c) {
       cmd::queue_concurrency(c.spool, c.a.name, std::nullopt);
       return 0;
     },
     [](Args& a, bool) { cmd::check_queues({a.name}); }},
    {"queue pause", "start no new job of these queues (running ones finish)", true,
     [](CLI::App& c, Args& a) { c.add_option("names", a.queues, "queue names")->required()->type_name("NAME..."); },
     [](Call& c) {
       cmd::queue_pause(c.spool, c.a.queues, true);
       return 0;
     },
     [](Args& a, bool) { cmd::check_queues(a.queues); }},
    {"queue resume", "let paused queues start jobs again", true,
     [](CLI::App& c, Args& a) { c.add_option("names", a.queues, "queue names")->required()->type_name("NAME..."); },
     [](Call& c) {
       cmd::queue_pause(c.spool, c.a.queues, false);
       return 0;
     },
     [](Args& a, bool) { cmd::check_queues(a.queues); }},
    {"worker", "run, stop and inspect worker processes", false, nullptr, nullptr},
    {"worker start", "run N workers under a supervisor in the foreground", true,
     [](CLI::App& c, Args& a) {
       c.add_option("-c,--count", a.count, "number of worker processes (default 1)")
           ->type_name("N")
           ->check(number(true, 1, "an integer from 1 to 1024", 1024));
       c.add_flag("-d,--detach", a.detach, "run in the background; print the supervisor's and workers' PIDs");
       c.add_option("--queue", a.queues, "take only jobs of this queue (repeatable; default: every queue)")
           ->type_name("NAME")
           ->allow_extra_args(false);
     },
     [](Call& c) {
       if (!c.a.detach) {
         return cmd::start_workers(c.spool, c.a.count, c.a.queues);
       }
       std::string text;
       {
         ProgressLine progress("worker start");
         for (pid_t pid : cmd::start_workers_detached(c.spool, c.a.count, c.a.queues, [&](std::size_t n) {
                progress.update(n, "reading the waiting jobs");
              })) {
           text += fmt::format("{}\n", pid);
         }
       }
       out(text);
       return 0;
     },
     [](Args& a, bool) { cmd::check_queues(a.queues); }},
    {"worker stop", "stop every worker on the spool and wait for them", false,
     [](CLI::App& c, Args& a) {
       c.add_flag("--now", a.now, "kill running jobs (counted as failed attempts) instead of waiting for them");
     },
     [](Call& c) {
       const std::size_t n = cmd::stop_workers(c.spool, c.a.now);
       out(n == 0 ? std::string("no workers were running\n")
                  : fmt::format("stopped {}\n", plural(n, "worker process", "worker processes")));
       return 0;
     }},
    {"worker status", "list worker processes and the job each runs", false,
     [](CLI::App& c, Args& a) { json_flag(c, a, "print a JSON array"); },
     [](Call& c) {
       const Json workers = cmd::worker_status(c.spool);
       c.a.json ? out_json(workers) : out(worker_table(workers));
       return 0;
     }},
    {"metrics", "print metrics in the Prometheus text format", false, nullptr,
     [](Call& c) {
       out(prometheus_text(c.spool));
       return 0;
     }},
    {"cluster", "share work with other spools through NATS JetStream", false, nullptr, nullptr},
    {"cluster join", "join this spool to a NATS JetStream cluster (creates its stream if missing)", true,
     [](CLI::App& c, Args& a) {
       c.add_option("servers", a.servers, "the NATS servers, nats://host:4222 (several: comma-separated)")
           ->required()
           ->type_name("URL[,URL...]");
       c.add_option("--stream", a.stream, "the JetStream stream of the jobs (default QUEUECTL)")->type_name("STREAM");
       c.add_option("--creds", a.creds, "a NATS credentials file")->type_name("FILE");
     },
     nullptr, nullptr, [](const Args&) { return true; }},
    {"cluster leave", "forget the cluster (its stream and jobs stay)", true, nullptr, nullptr, nullptr,
     [](const Args&) { return true; }},
    {"cluster status", "servers reached, jobs waiting in the stream, jobs per state and host", false,
     [](CLI::App& c, Args& a) { json_flag(c, a, "print one JSON object"); }, nullptr, nullptr,
     [](const Args&) { return true; }},
    {"serve", "serve the REST API, /metrics and the web dashboard", false,
     [](CLI::App& c, Args& a) {
       c.add_option("--listen", a.listen,
                    "address and port to listen on (default 127.0.0.1:8080; port 0: any free port)")
           ->type_name("HOST:PORT");
       c.add_option("--token-file", a.token_file, "require the token in this file for every request")
           ->type_name("FILE");
     },
     [](Call& c) { return c.helpers.serve(c.spool.root(), c.a.listen, c.a.token_file, c.argc, c.argv); }},
};

} // namespace

std::span<const Command> commands() {
  return k_commands;
}

} // namespace queuectl::cli
