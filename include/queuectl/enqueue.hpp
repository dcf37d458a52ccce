// enqueue: turning user input (a JSON argument, flags, or JSON lines) into new jobs.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/job.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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
  std::optional<std::string> queue;
  std::vector<std::string> after; // added to the job's `after`
  std::vector<std::string> tags;  // added to the job's `tags`
  bool hold = false;              // enqueued into held/
};

// Builds a new job from `base` (a JSON object or null) and the overrides, with the
// spool's defaults filled in, and validates it. A job given no id takes `id_if_missing`,
// or a generated one. Throws Error(Exit::usage).
Job make_job(const Json& base, const JobOverrides& o, const JobDefaults& d, Micros now,
             const std::string* id_if_missing = nullptr);

// `after` of `job` names jobs that exist: in `spool` (any state; none when null), or for
// which `earlier` holds; never the job itself. Error(failure) "no such job" otherwise,
// the message prefixed with `where` ("line 3: ").
void check_after(const Job& job, const Spool* spool, const std::function<bool(const std::string&)>& earlier,
                 const std::string& where);

// Enqueues one job. Returns its id. Throws Error(usage) when invalid, Error(failure) for
// a duplicate id or an I/O error.
std::string enqueue_one(Spool& spool, const Json& base, const JobOverrides& o);

// The ids of a batch in input order, compact for a million jobs: the generated ones
// (all of one length) side by side in one string, about 23 bytes a job; the ones the
// input gives in a map. Safe to give() from several threads.
class JobIds {
public:
  JobIds() = default;
  // `n` ids, generated (increasing in input order) when `generate`.
  JobIds(std::size_t n, bool generate);
  JobIds(JobIds&& o) noexcept;
  JobIds& operator=(JobIds&& o) noexcept;

  std::size_t size() const { return m_size; }
  std::string operator[](std::size_t i) const;
  // The generated id `i` (reads nothing give() writes: safe beside it).
  std::string generated(std::size_t i) const { return m_generated.substr(i * m_len, m_len); }
  // Job `i` has its own id (the input's, or --id).
  void give(std::size_t i, std::string id);
  const std::map<std::size_t, std::string>& given() const { return m_given; }

private:
  std::size_t m_size = 0;
  std::size_t m_len = 0; // of each generated id
  std::string m_generated;
  std::map<std::size_t, std::string> m_given;
  std::unique_ptr<std::mutex> m_mutex = std::make_unique<std::mutex>();
};

// The non-blank lines of a bulk input, as the offsets where they start (8 bytes a line).
class BatchLines {
public:
  explicit BatchLines(std::string_view input);
  std::size_t size() const { return m_starts.size(); }
  bool empty() const { return m_starts.empty(); }
  std::string_view text(std::size_t i) const;
  // 1-based, counting blank lines (counted when asked: for messages).
  std::size_t number(std::size_t i) const;

private:
  std::string_view m_input;
  std::vector<std::size_t> m_starts;
};

// The job of line `i` of a batch, as make_job builds it; Error(usage) "line N: why".
// `explicit_id` (optional) is set when the line or the overrides give an id.
Job batch_job(const BatchLines& lines, std::size_t i, const JobOverrides& o, const JobDefaults& d, Micros now,
              const std::string* id_if_missing, bool* explicit_id);

// Checks a batch as enqueue_lines does before it writes anything, with the default
// settings and without a spool: every line a valid job, no id given twice (Error(usage)),
// every id in `after` an earlier line's (Error(failure)). What `enqueue -` does before
// it creates a spool.
void check_batch(std::string_view input, const JobOverrides& o);

// Enqueues one JSON object per line of `input` (blank lines skipped), all or nothing: every
// line is validated (syntax, fields, ids unique in the batch and in the spool, `after`
// naming jobs of the spool or earlier lines) before any job is published. Throws Error(usage, "line N: why"). Returns
// the ids in input order; generated ids increase in input order. Large inputs are checked and written by several
// threads, in memory that grows by about 35 bytes a job beyond the input itself.
// `written`, when given, hears of every 1024 jobs written, from any of those threads.
// SIGINT, SIGTERM or SIGHUP held back (sys::HeldInterrupts) stop it with Error(failure),
// and nothing is enqueued.
JobIds enqueue_lines(Spool& spool, std::string_view input, const JobOverrides& o,
                     const std::function<void(std::size_t n)>& written = {});

} // namespace queuectl
