#include "queuectl/enqueue.hpp"

#include "queuectl/error.hpp"
#include "queuectl/parallel.hpp"
#include "queuectl/pending_index.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

namespace queuectl {

Job make_job(const Json& base, const JobOverrides& o, const JobDefaults& d, Micros now,
             const std::string* id_if_missing) {
  Job job(base.is_object() ? base : Json::object());
  Json& j = job.json();
  if (o.command) {
    j["command"] = *o.command;
  }
  if (o.id) {
    j["id"] = *o.id;
  }
  if (o.priority) {
    j["priority"] = *o.priority;
  }
  if (o.max_retries) {
    j["max_retries"] = *o.max_retries;
  }
  if (o.timeout) {
    j["timeout"] = *o.timeout;
  }
  if (o.run_at) {
    j["run_at"] = format_time(*o.run_at);
  }
  if (o.cwd) {
    j["cwd"] = *o.cwd;
  }
  if (!o.env.empty()) {
    Json& env = j["env"]; // null when absent; an existing non-object is left for validate
    if (env.is_null()) {
      env = Json::object();
    }
    if (env.is_object()) {
      for (const auto& [name, value] : o.env) {
        env[name] = value;
      }
    }
  }
  if (o.queue) {
    j["queue"] = *o.queue;
  }
  // --after and --tag add to what the JSON lists (an existing non-array is left for validate).
  const auto add_to = [&](const char* field, const std::vector<std::string>& values) {
    if (values.empty()) {
      return;
    }
    Json& arr = j[field];
    if (arr.is_null()) {
      arr = Json::array();
    }
    if (arr.is_array()) {
      for (const std::string& v : values) {
        if (std::find(arr.begin(), arr.end(), Json(v)) == arr.end()) {
          arr.push_back(v);
        }
      }
    }
  };
  add_to("after", o.after);
  add_to("tags", o.tags);
  if (id_if_missing && !j.contains("id")) {
    j["id"] = *id_if_missing;
  }
  job.validate(); // before fill_new, so that a bad given field is reported as given
  job.check_new();
  j.erase("created_at"); // always queuectl's: a job is created now
  j.erase("updated_at");
  job.fill_new(d, now);
  if (o.hold) {
    job.set_state(JobState::held);
  }
  return job;
}

void check_after(const Job& job, const Spool* spool, const std::function<bool(const std::string&)>& earlier,
                 const std::string& where) {
  const std::string id = job.id();
  for (const std::string& dep : job.after()) {
    if (dep == id) {
      fail(fmt::format("{}job '{}' cannot come after itself", where, id));
    }
    if (!(earlier && earlier(dep)) && !(spool && spool->id_taken(dep))) {
      fail(fmt::format("{}no such job '{}' (listed in 'after'): a job can only come after one that exists or an "
                       "earlier line of the same input",
                       where, dep));
    }
  }
}

namespace {

// Serialises enqueues that name their own ids, so that two of them with the same id
// cannot both pass the uniqueness check. Generated ids need no lock.
sys::LockFile lock_ids(const Spool& spool) {
  sys::LockFile l = sys::LockFile::open(spool.root_dir(), ".ids.lock", spool.file_mode());
  l.lock();
  return l;
}

Json parse_object(std::string_view text) {
  return Job::parse(text).json(); // validates syntax and field types
}

} // namespace

std::string enqueue_one(Spool& spool, const Json& base, const JobOverrides& o) {
  const Config cfg = spool.load_config();
  Job job = make_job(base, o, cfg.job_defaults(), now_micros());
  const bool explicit_id = o.id || (base.is_object() && base.contains("id"));
  check_after(job, &spool, nullptr, "");
  sys::LockFile lock;
  if (explicit_id) {
    lock = lock_ids(spool);
    if (spool.id_taken(job.id())) {
      fail(fmt::format("a job with id '{}' already exists (see: queuectl show {})", job.id(), job.id()));
    }
  }
  std::vector<Job> one{std::move(job)};
  return spool.enqueue_batch(one).at(0);
}

JobIds::JobIds(std::size_t n, bool generate) : m_size(n) {
  if (!generate || n == 0) {
    return;
  }
  std::string first = generate_id();
  m_len = first.size();
  m_generated.reserve(n * m_len);
  m_generated += first;
  for (std::size_t i = 1; i < n; ++i) {
    const std::string id = generate_id();
    if (id.size() != m_len) {
      fail("generated ids of different lengths"); // cannot happen before the year 2112
    }
    m_generated += id;
  }
}

JobIds::JobIds(JobIds&& o) noexcept
    : m_size(std::exchange(o.m_size, 0)), m_len(o.m_len), m_generated(std::move(o.m_generated)),
      m_given(std::move(o.m_given)), m_mutex(std::move(o.m_mutex)) {
  o.m_mutex = std::make_unique<std::mutex>();
}

JobIds& JobIds::operator=(JobIds&& o) noexcept {
  m_size = std::exchange(o.m_size, 0);
  m_len = o.m_len;
  m_generated = std::move(o.m_generated);
  m_given = std::move(o.m_given);
  return *this;
}

std::string JobIds::operator[](std::size_t i) const {
  if (const auto it = m_given.find(i); it != m_given.end()) {
    return it->second;
  }
  return generated(i);
}

void JobIds::give(std::size_t i, std::string id) {
  const std::lock_guard<std::mutex> g(*m_mutex);
  m_given[i] = std::move(id);
}

BatchLines::BatchLines(std::string_view input) : m_input(input) {
  for (std::size_t pos = 0; pos < input.size();) {
    auto nl = input.find('\n', pos);
    if (nl == std::string_view::npos) {
      nl = input.size();
    }
    if (input.substr(pos, nl - pos).find_first_not_of(" \t\r") != std::string_view::npos) {
      m_starts.push_back(pos);
    }
    pos = nl + 1;
  }
}

std::string_view BatchLines::text(std::size_t i) const {
  const std::string_view rest = m_input.substr(m_starts[i]);
  return rest.substr(0, rest.find('\n'));
}

std::size_t BatchLines::number(std::size_t i) const {
  return 1 + static_cast<std::size_t>(
                 std::count(m_input.begin(), m_input.begin() + static_cast<std::ptrdiff_t>(m_starts[i]), '\n'));
}

Job batch_job(const BatchLines& lines, std::size_t i, const JobOverrides& o, const JobDefaults& d, Micros now,
              const std::string* id_if_missing, bool* explicit_id) {
  try {
    const Json base = parse_object(lines.text(i));
    if (explicit_id) {
      *explicit_id = o.id || base.contains("id");
    }
    return make_job(base, o, d, now, id_if_missing);
  } catch (const Error& e) {
    if (e.code() == Exit::usage) {
      bad_usage(fmt::format("line {}: {}", lines.number(i), e.what()));
    }
    throw;
  }
}

namespace {

// Explicit ids are unique within a batch: Error(usage) naming both lines otherwise.
void check_unique(const BatchLines& lines, const std::map<std::size_t, std::string>& given) {
  std::unordered_map<std::string_view, std::size_t> seen;
  for (const auto& [i, id] : given) {
    if (const auto [it, fresh] = seen.emplace(id, i); !fresh) {
      bad_usage(
          fmt::format("line {}: duplicate id '{}' (also on line {})", lines.number(i), id, lines.number(it->second)));
    }
  }
}

} // namespace

void check_batch(std::string_view input, const JobOverrides& o) {
  const BatchLines lines(input);
  const Micros now = now_micros();
  std::map<std::size_t, std::string> given;
  const std::string placeholder = "x";              // no id is generated for a job that is not kept
  std::vector<std::pair<std::size_t, Job>> waiting; // the lines with `after`
  for (std::size_t i = 0; i < lines.size(); ++i) {
    bool explicit_id = false;
    Job job = batch_job(lines, i, o, JobDefaults(), now, &placeholder, &explicit_id);
    if (explicit_id) {
      given[i] = job.id();
    }
    if (!job.after().empty()) {
      waiting.emplace_back(i, std::move(job));
    }
  }
  check_unique(lines, given);
  std::unordered_map<std::string_view, std::size_t> line_of;
  for (const auto& [i, id] : given) {
    line_of.emplace(id, i);
  }
  for (const auto& [i, job] : waiting) {
    check_after(
        job, nullptr,
        [&, i = i](const std::string& dep) {
          const auto it = line_of.find(dep);
          return it != line_of.end() && it->second < i;
        },
        fmt::format("line {}: ", lines.number(i)));
  }
}

namespace {

// Ids must be unique within the batch, and explicit ones not taken in the spool: checked
// under the ids lock, returned to be held until the batch is published. Generated ids are
// unique by construction, so a batch without explicit ids needs neither.
sys::LockFile check_batch_ids(const Spool& spool, const JobIds& ids, const BatchLines& lines) {
  sys::LockFile lock;
  if (ids.given().empty()) {
    return lock;
  }
  check_unique(lines, ids.given());
  lock = lock_ids(spool);
  for (const auto& [i, id] : ids.given()) {
    if (spool.id_taken(id)) {
      // An operation failure, as for one enqueue: re-running a batch that was cut short
      // is not bad usage.
      fail(fmt::format("line {}: a job with id '{}' already exists", lines.number(i), id));
    }
  }
  return lock;
}

} // namespace

JobIds enqueue_lines(Spool& spool, std::string_view input, const JobOverrides& o,
                     const std::function<void(std::size_t n)>& written) {
  const Config cfg = spool.load_config();
  const JobDefaults d = cfg.job_defaults();
  const Micros now = now_micros();
  const BatchLines lines(input);
  if (lines.empty()) {
    return {};
  }
  // Generated here, in input order: the jobs of a batch share created_at, so their ids
  // keep the input's order (FIFO) whichever thread builds which job.
  JobIds ids(lines.size(), !o.id);
  // Each line is checked and written to tmp/ at once, on several threads; nothing
  // reaches pending/ before every line has passed, and a failure removes what was written.
  Spool::NewJobs batch(spool, lines.size(), o.hold ? JobState::held : JobState::pending);
  std::mutex waiting_mutex;
  std::vector<std::pair<std::size_t, std::vector<std::string>>> waiting; // lines with `after`
  // The lowest line that failed so far: other threads stop before it (no point writing
  // more) but not after it, so that the first bad line is the one reported.
  std::atomic<std::size_t> first_bad{lines.size()};
  for_chunks(lines.size(), [&](std::size_t begin, std::size_t end) {
    std::string fresh;
    pending_index::Appender order(spool); // the jobs' lines, before any is published
    for (std::size_t i = begin; i < end && i < first_bad.load(std::memory_order_relaxed); ++i) {
      try {
        if ((i - begin) % 1024 == 1023) {
          if (sys::interrupt_pending()) {
            fail("interrupted: nothing was enqueued"); // what was written goes with the batch
          }
          if (written) {
            written(1024);
          }
        }
        bool given = false;
        if (!o.id) {
          fresh = ids.generated(i);
        }
        const Job job = batch_job(lines, i, o, d, now, o.id ? nullptr : &fresh, &given);
        if (given) {
          ids.give(i, job.id());
        }
        batch.write(i, job, false);
        order.add(job);
        if (auto deps = job.after(); !deps.empty()) {
          const std::lock_guard<std::mutex> g(waiting_mutex);
          waiting.emplace_back(i, std::move(deps));
        }
      } catch (const Error&) {
        std::size_t seen = first_bad.load();
        while (i < seen && !first_bad.compare_exchange_weak(seen, i)) {
        }
        throw;
      }
    }
  });
  if (!waiting.empty()) {
    // Only now are the ids of every line known: an id in `after` is an earlier line's,
    // or a job of the spool.
    std::unordered_map<std::string, std::size_t> line_of;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      line_of.emplace(ids[i], i);
    }
    std::sort(waiting.begin(), waiting.end());
    for (const auto& [i, deps] : waiting) {
      Job job(Json{{"id", ids[i]}, {"after", deps}});
      check_after(
          job, &spool,
          [&, i = i](const std::string& dep) {
            const auto it = line_of.find(dep);
            return it != line_of.end() && it->second < i;
          },
          fmt::format("line {}: ", lines.number(i)));
    }
  }
  if (sys::interrupt_pending()) {
    fail("interrupted: nothing was enqueued");
  }
  const sys::LockFile ids_lock = check_batch_ids(spool, ids, lines);
  if (sys::interrupt_pending()) {
    fail("interrupted: nothing was enqueued");
  }
  batch.publish([&](std::size_t i) { return ids[i]; }, false);
  return ids;
}

} // namespace queuectl
