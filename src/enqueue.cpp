#include "queuectl/enqueue.hpp"

#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>

#include <unordered_map>

namespace queuectl {

Job make_job(const Json& base, const JobOverrides& o, const JobDefaults& d, Micros now) {
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
  job.validate(); // before fill_new, so that a bad given field is reported as given
  job.fill_new(d, now);
  return job;
}

namespace {

// Serialises enqueues that name their own ids, so that two of them with the same id
// cannot both pass the uniqueness check. Generated ids need no lock.
Fd lock_ids(const Spool& spool) {
  Fd fd(::openat(spool.root_dir(), ".ids.lock", O_RDWR | O_CREAT | O_CLOEXEC, spool.file_mode()));
  if (!fd) {
    throw_errno("cannot open", spool.path_of(".ids.lock", ""));
  }
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      throw_errno("cannot lock", spool.path_of(".ids.lock", ""));
    }
  }
  return fd;
}

Json parse_object(std::string_view text) {
  return Job::parse(text).json(); // validates syntax and field types
}

} // namespace

std::string enqueue_one(Spool& spool, const Json& base, const JobOverrides& o) {
  const Config cfg = spool.load_config();
  Job job = make_job(base, o, cfg.job_defaults(), now_micros());
  const bool explicit_id = o.id || (base.is_object() && base.contains("id"));
  Fd lock;
  if (explicit_id) {
    lock = lock_ids(spool);
    if (spool.id_taken(job.id())) {
      fail(fmt::format("a job with id '{}' already exists (see: queuectl show {})", job.id(), job.id()));
    }
  }
  std::vector<Job> one{std::move(job)};
  return spool.enqueue_batch(one).at(0);
}

std::vector<std::string> enqueue_lines(Spool& spool, std::string_view input, const JobOverrides& o) {
  const Config cfg = spool.load_config();
  const JobDefaults d = cfg.job_defaults();
  const Micros now = now_micros();
  std::vector<Job> jobs;
  std::vector<std::size_t> line_of;
  std::vector<bool> explicit_id;
  std::size_t line = 0;
  while (!input.empty()) {
    ++line;
    const auto nl = input.find('\n');
    std::string_view text = input.substr(0, nl);
    input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) {
      continue;
    }
    try {
      const Json base = parse_object(text);
      jobs.push_back(make_job(base, o, d, now));
      explicit_id.push_back(o.id || base.contains("id"));
    } catch (const Error& e) {
      bad_usage(fmt::format("line {}: {}", line, e.what()));
    }
    line_of.push_back(line);
  }
  if (jobs.empty()) {
    return {};
  }
  std::unordered_map<std::string, std::size_t> seen;
  Fd lock;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const std::string id = jobs[i].id();
    if (const auto [it, fresh] = seen.emplace(id, line_of[i]); !fresh) {
      bad_usage(fmt::format("line {}: duplicate id '{}' (also on line {})", line_of[i], id, it->second));
    }
    if (explicit_id[i]) {
      if (!lock) {
        lock = lock_ids(spool);
      }
      if (spool.id_taken(id)) {
        bad_usage(fmt::format("line {}: a job with id '{}' already exists", line_of[i], id));
      }
    }
  }
  return spool.enqueue_batch(jobs);
}

} // namespace queuectl
