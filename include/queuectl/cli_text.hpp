// cli_text: how the command line shows results to a person (the --json forms are the
// commands' own JSON, printed as it is).
#pragma once

#include "queuectl/enqueue.hpp"
#include "queuectl/job.hpp"
#include "queuectl/spool.hpp"

#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace queuectl::cli {

// Writes to standard output (an error there is an error of the command).
void out(std::string_view s);
// JSON as the --json forms print it: indented, invalid UTF-8 replaced.
void out_json(const Json& j);
// The ids of an enqueue, one a line, written 64 KiB at a time: a million ids need not
// be in memory twice.
void out_ids(const JobIds& ids);

// `cluster status`: the servers, the stream, and the jobs per state and per host.
std::string cluster_lines(const Json& status);

// How a table shows times: relative to `now` ("3m ago", "in 2h"), or, with `utc`, as
// RFC 3339 UTC to the second; and whether states are in colour.
struct TableStyle {
  bool utc = false;
  Micros now = 0;
  bool colour = false;
};

// Whether to write colours to `fd`: a terminal, unless $NO_COLOR is set (no-color.org)
// or $TERM is "dumb".
bool use_colour(int fd);
// A progress line on standard error for work that lasts ("enqueue: 34000 of 100000 jobs
// written"): drawn only on a terminal, from the first second on, at most five times a
// second, from any thread; cleared when done.
class ProgressLine {
public:
  explicit ProgressLine(std::string what);
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ~ProgressLine();
  void update(std::size_t done, std::size_t total, const char* unit);
  // The same without a total: "reading the waiting jobs: 34000 so far".
  void update(std::size_t done, const char* what_so_far);

private:
  void draw(const std::string& text);

  std::string m_what;
  bool m_on;
  Micros m_start;
  std::mutex m_mutex;
  Micros m_last = 0;
  bool m_shown = false;
};

// "queuectl: error: MESSAGE" on standard error, "error:" in red on a terminal.
void say_error(std::string_view message);
// `text` in the colour of state `s` (as ANSI SGR), when `on`.
std::string paint(JobState s, const std::string& text, bool on);

// The job table of `list` and `dlq list`: ID, STATE, PRI, TRIES, CREATED, DUE (run_at of
// a job not yet started, next_run_at of a failed one), COMMAND / LAST ERROR, and QUEUE
// when a job is in a queue other than "default"; a damaged or foreign file shows INVALID
// and why. After the command: "(after: ID, ...)" for the jobs a job still waits for
// (`waits`, when given, says which), and its tags as "#tag". Empty for no jobs.
std::string job_table(const std::vector<StoredJob>& jobs, const TableStyle& times,
                      const std::function<std::vector<std::string>(const StoredJob&)>& waits = {});
// `queue list`: QUEUE, a count per state, LIMIT, PAUSED.
std::string queue_table(const Json& queues);
// `status`: one "state count" line each, then workers.
std::string status_lines(const Json& status, bool colour = false);
// `config list`: "key value" lines.
std::string config_lines(const std::vector<std::pair<std::string, Json>>& settings);
// `worker status`: PID, SUPERVISOR, SINCE, JOB; "no workers running" when none.
std::string worker_table(const Json& workers);

// Error(usage) for the first id that is not a valid one.
void check_ids(const std::vector<std::string>& ids);
// `wait`'s line on a timeout: "timed out after SEC s; not finished: ID, ...".
void say_unfinished(double timeout, const std::vector<std::string>& unfinished);

} // namespace queuectl::cli
