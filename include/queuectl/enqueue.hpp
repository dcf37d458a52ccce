// enqueue: turning user input (a JSON argument, flags, or JSON lines) into new jobs.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/job.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace queuectl {

class Spool;

// Fields given as command-line flags; each one set wins over the JSON's field.
struct JobOverrides {
  std::optional<std::string> command;
  std::optional<std::string> id;
  std::optional<std::int64_t> priority;
  std::optional<std::int64_t> max_retries;
  std::optional<double> timeout;
  std::optional<Micros> run_at;
  std::optional<std::string> cwd;
  std::vector<std::pair<std::string, std::string>> env; // added to the job's env; each name wins
};

// Builds a new job from `base` (a JSON object or null) and the overrides, with the
// spool's defaults filled in, and validates it. A job given no id takes `id_if_missing`,
// or a generated one. Throws Error(Exit::usage).
Job make_job(const Json& base, const JobOverrides& o, const JobDefaults& d, Micros now,
             const std::string* id_if_missing = nullptr);

// Enqueues one job. Returns its id. Throws Error(usage) when invalid, Error(failure) for
// a duplicate id or an I/O error.
std::string enqueue_one(Spool& spool, const Json& base, const JobOverrides& o);

// One line of a bulk input that holds something (blank lines are skipped).
struct BatchLine {
  std::string_view text;
  std::size_t number; // 1-based, counting blank lines
};
std::vector<BatchLine> batch_lines(std::string_view input);

// The job of one line of a batch, as make_job builds it; Error(usage) "line N: why".
// `explicit_id` (optional) is set when the line or the overrides give an id.
Job batch_job(const BatchLine& line, const JobOverrides& o, const JobDefaults& d, Micros now,
              const std::string* id_if_missing, bool* explicit_id);

// Checks a batch as enqueue_lines does before it writes anything, with the default
// settings and without a spool: every line a valid job, no id given twice. Throws
// Error(usage). What `enqueue -` does before it creates a spool.
void check_batch(std::string_view input, const JobOverrides& o);

// Enqueues one JSON object per line of `input` (blank lines skipped), all or nothing: every
// line is validated (syntax, fields, ids unique in the batch and in the spool) before any
// job is written. Throws Error(usage, "line N: why"). Returns the ids in input order;
// generated ids increase in input order. Large inputs are checked and written by several
// threads.
std::vector<std::string> enqueue_lines(Spool& spool, std::string_view input, const JobOverrides& o);

} // namespace queuectl
