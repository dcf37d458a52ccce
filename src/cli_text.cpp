#include "queuectl/cli_text.hpp"

#include "queuectl/config.hpp"
#include "queuectl/error.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>

namespace queuectl::cli {

namespace {

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

} // namespace

bool use_colour(int fd) {
  const char* no = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  return (no == nullptr || *no == '\0') && !(term != nullptr && std::string_view(term) == "dumb") &&
         sys::is_terminal(fd);
}

ProgressLine::ProgressLine(std::string what)
    : m_what(std::move(what)), m_on(sys::is_terminal(STDERR_FILENO)), m_start(monotonic_micros()) {}

ProgressLine::~ProgressLine() {
  if (m_shown) {
    fmt::print(stderr, "\r\033[K");
  }
}

void ProgressLine::update(std::size_t done, std::size_t total, const char* unit) {
  if (m_on) {
    draw(fmt::format("{} of {} {}", done, total, unit));
  }
}

void ProgressLine::update(std::size_t done, const char* what_so_far) {
  if (m_on) {
    draw(fmt::format("{}: {} so far", what_so_far, done));
  }
}

void ProgressLine::draw(const std::string& text) {
  const Micros now = monotonic_micros();
  const std::unique_lock<std::mutex> lock(m_mutex, std::try_to_lock);
  if (!lock.owns_lock() || now - m_start < 1'000'000 || now - m_last < 200'000) {
    return;
  }
  m_last = now;
  m_shown = true;
  fmt::print(stderr, "\r\033[Kqueuectl: {}: {}", m_what, text);
  std::fflush(stderr);
}

void say_error(std::string_view message) {
  static const bool colour = use_colour(STDERR_FILENO);
  fmt::print(stderr, "queuectl: {}: {}\n", colour ? "\033[1;31merror\033[0m" : "error", message);
}

std::string paint(JobState s, const std::string& text, bool on) {
  if (!on) {
    return text;
  }
  const char* sgr = "";
  switch (s) {
  case JobState::pending:
    sgr = "36"; // cyan
    break;
  case JobState::held:
    sgr = "35"; // magenta
    break;
  case JobState::processing:
    sgr = "1;34"; // bold blue
    break;
  case JobState::failed:
    sgr = "33"; // yellow
    break;
  case JobState::completed:
    sgr = "32"; // green
    break;
  case JobState::dead:
    sgr = "1;31"; // bold red
    break;
  }
  return fmt::format("\033[{}m{}\033[0m", sgr, text);
}

namespace {

std::string shown_time(const std::string& text, const TableStyle& style) {
  const auto t = parse_time(text);
  if (!t) {
    return text.empty() ? "-" : text;
  }
  return style.utc ? format_time(*t).substr(0, 19) + "Z" : relative_time(*t, style.now);
}

// When the job is next due: its run_at until it first runs, its retry time when failed.
std::string due_of(const StoredJob& sj) {
  if (sj.state == JobState::failed || sj.state == JobState::held) {
    return sj.job.text("next_run_at");
  }
  if (sj.state == JobState::pending) {
    const std::string retry = sj.job.text("next_run_at");
    return retry.empty() && sj.job.attempts() == 0 ? sj.job.text("run_at") : retry;
  }
  return {};
}

} // namespace

std::string job_table(const std::vector<StoredJob>& jobs, const TableStyle& times,
                      const std::function<std::vector<std::string>(const StoredJob&)>& waits) {
  if (jobs.empty()) {
    return {};
  }
  std::size_t w = 2;
  std::size_t qw = 0;                                    // the QUEUE column, shown only when a job is not in "default"
  std::vector<std::pair<std::string, std::string>> when; // CREATED, DUE
  std::size_t cw = 7;
  std::size_t dw = 3;
  for (const StoredJob& sj : jobs) {
    w = std::max(w, sj.job.id().size());
    if (const std::string q = sj.job.queue(); q != k_default_queue) {
      qw = std::max<std::size_t>({qw, q.size(), 7});
    }
    when.emplace_back(shown_time(sj.job.text("created_at"), times), shown_time(due_of(sj), times));
    cw = std::max(cw, when.back().first.size());
    dw = std::max(dw, when.back().second.size());
  }
  const auto queue_cell = [&](const std::string& q) {
    return qw == 0 ? std::string() : fmt::format("{:<{}}  ", q, qw);
  };
  std::string text = fmt::format("{:<{}}  {:<10}  {}{:>4}  {:>5}  {:<{}}  {:<{}}  {}\n", "ID", w, "STATE",
                                 queue_cell("QUEUE"), "PRI", "TRIES", "CREATED", cw, "DUE", dw, "COMMAND / LAST ERROR");
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const StoredJob& sj = jobs[i];
    std::string what = shorten(sj.job.command(), 60);
    if (const std::string bad = sj.job.text("invalid"); !bad.empty()) {
      what = "INVALID: " + shorten(bad, 80); // a damaged or foreign file, listed as what it is
    } else if (const std::string err = sj.job.text("last_error"); !err.empty() && sj.state != JobState::completed) {
      what += "  [" + shorten(err, 40) + "]";
    }
    if (waits) {
      if (const auto deps = waits(sj); !deps.empty()) {
        std::string list;
        for (const std::string& d : deps) {
          list += (list.empty() ? "" : ", ") + d;
        }
        what += "  (after: " + shorten(list, 60) + ")";
      }
    }
    for (const std::string& tag : sj.job.tags()) {
      what += "  #" + shorten(tag, 64);
    }
    text += fmt::format("{:<{}}  {}  {}{:>4}  {:>2}/{:<2}  {:<{}}  {:<{}}  {}\n", sj.job.id(), w,
                        paint(sj.state, fmt::format("{:<10}", state_name(sj.state)), times.colour),
                        queue_cell(sj.job.queue()), sj.job.priority(), sj.job.attempts(), sj.job.max_runs(),
                        when[i].first, cw, when[i].second, dw, what);
  }
  return text;
}

std::string queue_table(const Json& queues) {
  if (queues.empty()) {
    return "no queues: every job is in the queue 'default' until one is given with --queue\n";
  }
  std::size_t w = 5;
  for (const Json& q : queues) {
    w = std::max(w, q["queue"].get_ref<const std::string&>().size());
  }
  std::string text = fmt::format("{:<{}}  {:>7}  {:>5}  {:>10}  {:>6}  {:>9}  {:>5}  {:>5}  {}\n", "QUEUE", w,
                                 "PENDING", "HELD", "PROCESSING", "FAILED", "COMPLETED", "DEAD", "LIMIT", "PAUSED");
  for (const Json& q : queues) {
    text +=
        fmt::format("{:<{}}  {:>7}  {:>5}  {:>10}  {:>6}  {:>9}  {:>5}  {:>5}  {}\n", q["queue"].get<std::string>(), w,
                    q["pending"].get<std::size_t>(), q["held"].get<std::size_t>(), q["processing"].get<std::size_t>(),
                    q["failed"].get<std::size_t>(), q["completed"].get<std::size_t>(), q["dead"].get<std::size_t>(),
                    q["concurrency"].is_null() ? std::string("-") : q["concurrency"].dump(),
                    q["paused"].get<bool>() ? "yes" : "no");
  }
  return text;
}

std::string status_lines(const Json& status, bool colour) {
  std::string text;
  for (const auto& [k, v] : status.items()) {
    const std::string label = fmt::format("{:<11}", k);
    const auto st = parse_state(k);
    text += fmt::format("{} {}\n", st && v.get<std::size_t>() > 0 ? paint(*st, label, colour) : label,
                        v.get<std::size_t>());
  }
  return text;
}

std::string config_lines(const std::vector<std::pair<std::string, Json>>& settings) {
  std::string text;
  for (const auto& [k, v] : settings) {
    text += fmt::format("{} {}\n", k, format_value(v));
  }
  return text;
}

std::string worker_table(const Json& workers) {
  if (workers.empty()) {
    return "no workers running\n";
  }
  std::string text = fmt::format("{:<8} {:<11} {:<28} {}\n", "PID", "SUPERVISOR", "SINCE", "JOB");
  for (const Json& w : workers) {
    text += fmt::format("{:<8} {:<11} {:<28} {}\n", w["pid"].get<int>(), w["supervisor"].get<int>(),
                        w["since"].get<std::string>(), w["job"].is_string() ? w["job"].get<std::string>() : "-");
  }
  return text;
}

void out(std::string_view s) {
  sys::write_all(STDOUT_FILENO, s, "standard output");
}

void out_json(const Json& j) {
  out(j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
}

void out_ids(const JobIds& ids) {
  std::string text;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    text += ids[i];
    text += '\n';
    if (text.size() >= 65536 || i + 1 == ids.size()) {
      out(text);
      text.clear();
    }
  }
}

std::string cluster_lines(const Json& st) {
  std::string text = fmt::format("connected to {} ({} server{} known)\n", st.value("connected", ""),
                                 st["servers"].size(), st["servers"].size() == 1 ? "" : "s");
  const Json& sj = st["stream"];
  text += fmt::format("stream {}: {} job{} waiting, {} replica{}\n", sj.value("name", ""), sj.value("waiting", 0),
                      sj.value("waiting", 0) == 1 ? "" : "s", sj.value("replicas", 0),
                      sj.value("replicas", 0) == 1 ? "" : "s");
  const auto counts = [](const Json& by_state) {
    std::string line;
    for (const auto& [state, n] : by_state.items()) {
      line += fmt::format("{}{} {}", line.empty() ? "" : ", ", n.get<std::int64_t>(), state);
    }
    return line.empty() ? std::string("none") : line;
  };
  text += fmt::format("jobs: {}\n", counts(st["jobs"]));
  for (const auto& [host, by_state] : st["hosts"].items()) {
    text += fmt::format("  {}: {}\n", host, counts(by_state));
  }
  return text;
}

void check_ids(const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    if (!valid_id(id)) {
      bad_usage(fmt::format("invalid job id '{}': {}", id, k_id_rule));
    }
  }
}

void say_unfinished(double timeout, const std::vector<std::string>& unfinished) {
  std::string names;
  for (const std::string& id : unfinished) {
    names += (names.empty() ? "" : ", ") + id;
  }
  fmt::print(stderr, "queuectl: timed out after {} s; not finished: {}\n", format_value(Json(timeout)), names);
}

} // namespace queuectl::cli
