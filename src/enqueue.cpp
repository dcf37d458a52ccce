#include "queuectl/enqueue.hpp"

#include "queuectl/error.hpp"
#include "queuectl/parallel.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <fcntl.h>

#include <algorithm>
#include <atomic>
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
  if (id_if_missing && !j.contains("id")) {
    j["id"] = *id_if_missing;
  }
  job.validate(); // before fill_new, so that a bad given field is reported as given
  job.check_new();
  j.erase("created_at"); // always queuectl's: a job is created now
  j.erase("updated_at");
  job.fill_new(d, now);
  return job;
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

std::vector<BatchLine> batch_lines(std::string_view input) {
  std::vector<BatchLine> lines;
  for (std::size_t number = 1; !input.empty(); ++number) {
    const auto nl = input.find('\n');
    const std::string_view text = input.substr(0, nl);
    input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
    if (text.find_first_not_of(" \t\r") != std::string_view::npos) {
      lines.push_back({text, number});
    }
  }
  return lines;
}

Job batch_job(const BatchLine& line, const JobOverrides& o, const JobDefaults& d, Micros now,
              const std::string* id_if_missing, bool* explicit_id) {
  try {
    const Json base = parse_object(line.text);
    if (explicit_id) {
      *explicit_id = o.id || base.contains("id");
    }
    return make_job(base, o, d, now, id_if_missing);
  } catch (const Error& e) {
    if (e.code() == Exit::usage) {
      bad_usage(fmt::format("line {}: {}", line.number, e.what()));
    }
    throw;
  }
}

namespace {

// Explicit ids are unique within a batch: Error(usage) naming both lines otherwise.
template <class IdOf> void check_unique(const std::vector<BatchLine>& lines, IdOf id_of) {
  std::unordered_map<std::string_view, std::size_t> seen;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (const std::optional<std::string_view> id = id_of(i)) {
      if (const auto [it, fresh] = seen.emplace(*id, lines[i].number); !fresh) {
        bad_usage(fmt::format("line {}: duplicate id '{}' (also on line {})", lines[i].number, *id, it->second));
      }
    }
  }
}

} // namespace

void check_batch(std::string_view input, const JobOverrides& o) {
  const std::vector<BatchLine> lines = batch_lines(input);
  const Micros now = now_micros();
  std::vector<std::optional<std::string>> ids(lines.size());
  const std::string placeholder = "x"; // no id is generated for a job that is not kept
  for (std::size_t i = 0; i < lines.size(); ++i) {
    bool given = false;
    const Job job = batch_job(lines[i], o, JobDefaults(), now, &placeholder, &given);
    if (given) {
      ids[i] = job.id();
    }
  }
  check_unique(lines, [&](std::size_t i) { return ids[i] ? std::optional<std::string_view>(*ids[i]) : std::nullopt; });
}

namespace {

// Ids must be unique within the batch, and explicit ones not taken in the spool: checked
// under the ids lock, returned to be held until the batch is published. Generated ids are
// unique by construction, so a batch without explicit ids needs neither.
sys::LockFile check_batch_ids(const Spool& spool, const std::vector<Spool::Staged>& staged,
                              const std::vector<char>& explicit_id, const std::vector<BatchLine>& lines) {
  sys::LockFile lock;
  if (std::find(explicit_id.begin(), explicit_id.end(), 1) == explicit_id.end()) {
    return lock;
  }
  check_unique(lines, [&](std::size_t i) { return std::optional<std::string_view>(staged[i].id); });
  for (std::size_t i = 0; i < staged.size(); ++i) {
    const std::string& id = staged[i].id;
    if (explicit_id[i]) {
      if (!lock) {
        lock = lock_ids(spool);
      }
      if (spool.id_taken(id)) {
        // An operation failure, as for one enqueue: re-running a batch that was cut short
        // is not bad usage.
        fail(fmt::format("line {}: a job with id '{}' already exists", lines[i].number, id));
      }
    }
  }
  return lock;
}

} // namespace

std::vector<std::string> enqueue_lines(Spool& spool, std::string_view input, const JobOverrides& o) {
  const Config cfg = spool.load_config();
  const JobDefaults d = cfg.job_defaults();
  const Micros now = now_micros();
  const std::vector<BatchLine> lines = batch_lines(input);
  if (lines.empty()) {
    return {};
  }
  // Generated here, in input order: the jobs of a batch share created_at, so their ids
  // keep the input's order (FIFO) whichever thread builds which job.
  std::vector<std::string> fresh_ids(o.id ? 0 : lines.size());
  for (std::string& id : fresh_ids) {
    id = generate_id();
  }
  // Each line is checked and written to tmp/ at once, on several threads; nothing
  // reaches pending/ before every line has passed, and a failure removes what was written.
  std::vector<Spool::Staged> staged(lines.size());
  std::vector<char> explicit_id(lines.size());
  // The lowest line that failed so far: other threads stop before it (no point writing
  // more) but not after it, so that the first bad line is the one reported.
  std::atomic<std::size_t> first_bad{lines.size()};
  sys::LockFile ids_lock;
  try {
    for_chunks(lines.size(), [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end && i < first_bad.load(std::memory_order_relaxed); ++i) {
        try {
          bool given = false;
          const Job job = batch_job(lines[i], o, d, now, fresh_ids.empty() ? nullptr : &fresh_ids[i], &given);
          explicit_id[i] = given;
          spool.stage_new(job, false, staged[i]);
        } catch (const Error&) {
          std::size_t seen = first_bad.load();
          while (i < seen && !first_bad.compare_exchange_weak(seen, i)) {
          }
          throw;
        }
      }
    });
    ids_lock = check_batch_ids(spool, staged, explicit_id, lines);
  } catch (...) {
    spool.discard(staged);
    throw;
  }
  return spool.publish(staged, false);
}

} // namespace queuectl
