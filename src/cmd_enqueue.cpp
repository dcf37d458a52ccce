// `enqueue`: its arguments checked and turned into overrides, then jobs enqueued.
#include "queuectl/commands.hpp"
#include "queuectl/error.hpp"

#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <system_error>

namespace queuectl::cmd {

namespace {

Micros run_at_of(const EnqueueArgs& a) {
  if (a.run_at) {
    const auto t = parse_time(*a.run_at);
    if (!t) {
      bad_usage(
          fmt::format("invalid --run-at '{}': expected an RFC 3339 time such as 2026-11-23T05:00:00Z", *a.run_at));
    }
    return *t;
  }
  const Micros t = later_by(now_micros(), *a.delay);
  if (t == k_latest_time) {
    bad_usage(fmt::format("--delay {} is too far in the future: the latest time a job can run at is {}", *a.delay,
                          format_time(k_latest_time)));
  }
  return t;
}

// --cwd: an existing directory, stored absolute (a relative one is the caller's).
std::string cwd_of(const std::string& given) {
  std::error_code ec;
  auto dir = std::filesystem::absolute(given, ec).lexically_normal();
  if (!dir.has_filename() && dir != dir.root_path()) {
    dir = dir.parent_path(); // "/srv/app/" and "." name the directory without a trailing slash
  }
  if (given.empty() || ec || !std::filesystem::is_directory(dir, ec)) {
    bad_usage(fmt::format("--cwd '{}': no such directory", given));
  }
  return dir.string();
}

std::pair<std::string, std::string> env_of(const std::string& kv) {
  const auto eq = kv.find('=');
  if (eq == 0 || eq == std::string::npos) {
    bad_usage(fmt::format("--env '{}': expected NAME=VALUE", kv));
  }
  std::string name = kv.substr(0, eq);
  if (!valid_env_name(name)) {
    bad_usage(fmt::format(
        "--env '{}': '{}' is not a variable name (letters, digits and '_', not starting with a digit)", kv, name));
  }
  return {std::move(name), kv.substr(eq + 1)};
}

// The JSON argument. Text that is no JSON object at all is most often a shell command
// given without --command: say so.
Json parse_argument(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') {
    bad_usage(fmt::format("'{}' is not a JSON job (an object such as '{{\"command\":\"...\"}}'); to enqueue a "
                          "shell command, use: queuectl enqueue --command '{}'",
                          text, text));
  }
  try {
    return Job::parse(text).json();
  } catch (const Error& e) {
    bad_usage(fmt::format("the JSON job is not valid: {}", e.what()));
  }
}

JobOverrides overrides_of(const EnqueueArgs& a) {
  JobOverrides o;
  o.command = a.command;
  o.id = a.id;
  o.priority = a.priority;
  o.max_retries = a.max_retries;
  o.timeout = a.timeout;
  if (a.run_at || a.delay) {
    o.run_at = run_at_of(a);
  }
  if (a.cwd) {
    o.cwd = cwd_of(*a.cwd);
  }
  for (const std::string& kv : a.env) {
    o.env.push_back(env_of(kv));
  }
  if (o.id && !valid_id(*o.id)) {
    bad_usage(fmt::format("invalid --id '{}': {}", *o.id, k_id_rule));
  }
  if (a.queue && !valid_queue(*a.queue)) {
    bad_usage(fmt::format("invalid --queue '{}': {}", *a.queue, k_queue_rule));
  }
  o.queue = a.queue;
  for (const std::string& dep : a.after) {
    if (!valid_id(dep)) {
      bad_usage(fmt::format("invalid --after '{}': {}", dep, k_id_rule));
    }
  }
  o.after = a.after;
  for (const std::string& tag : a.tags) {
    if (!valid_tag(tag)) {
      bad_usage(fmt::format("invalid --tag '{}': a tag is 1 to 64 characters without control characters", tag));
    }
  }
  o.tags = a.tags;
  o.hold = a.hold;
  return o;
}

} // namespace

EnqueueRequest prepare_enqueue(const EnqueueArgs& a, const std::function<std::string()>& read_input, bool new_spool) {
  EnqueueRequest r;
  r.overrides = overrides_of(a);
  if (a.json == "-") {
    r.lines = read_input();
    if (new_spool) {
      check_batch(*r.lines, r.overrides); // with the defaults a new spool would have
    }
    return r;
  }
  if (!a.json.empty()) {
    r.base = parse_argument(a.json);
  } else if (!a.command) {
    bad_usage("nothing to enqueue: give a JSON job, '-', or --command CMD");
  }
  const Job job = make_job(r.base, r.overrides, JobDefaults(), now_micros()); // refused now, before any spool is made
  if (new_spool) {
    check_after(job, nullptr, nullptr, ""); // a new spool has no job to come after
  }
  return r;
}

JobIds enqueue(Spool& spool, const EnqueueRequest& r) {
  if (r.lines) {
    if (!r.progress) {
      return enqueue_lines(spool, *r.lines, r.overrides);
    }
    const std::size_t total = BatchLines(*r.lines).size();
    std::atomic<std::size_t> done{0};
    return enqueue_lines(spool, *r.lines, r.overrides, [&](std::size_t n) { r.progress(done += n, total); });
  }
  JobIds one(1, false);
  one.give(0, enqueue_one(spool, r.base, r.overrides));
  return one;
}

} // namespace queuectl::cmd
