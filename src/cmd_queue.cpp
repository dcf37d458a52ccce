// queue list, set, unset, pause, resume: named queues and their settings (SPEC section 7).
#include "queuectl/commands.hpp"
#include "queuectl/config.hpp"
#include "queuectl/error.hpp"

#include <fmt/format.h>

#include <map>
#include <optional>
#include <vector>

namespace queuectl::cmd {

Json queue_list(const Spool& spool) {
  const Config cfg = spool.load_config();
  std::map<std::string, Json> rows;
  const auto row = [&](const std::string& name) -> Json& {
    Json& r = rows[name];
    if (r.is_null()) {
      r = Json::object();
      r["queue"] = name;
      for (JobState s : k_all_states) {
        r[std::string(state_name(s))] = 0;
      }
      const QueueSettings q = cfg.queue(name);
      r["concurrency"] = q.concurrency ? Json(*q.concurrency) : Json(nullptr);
      r["paused"] = q.paused;
    }
    return r;
  };
  for (const auto& [name, q] : cfg.queues()) {
    row(name);
  }
  // Every job file says its queue: each is read, one at a time (counted, not kept, and
  // not sorted as a listing is).
  for (JobState s : k_all_states) {
    std::vector<std::string> files;
    spool.for_each_job(s, [&](std::string_view stem) { files.push_back(job_file(stem)); });
    const std::string state(state_name(s));
    for (const std::string& f : files) {
      const std::optional<Job> job = spool.read_listed(s, f);
      if (job && !job->json().contains("invalid")) {
        Json& n = row(job->queue())[state];
        n = n.get<std::size_t>() + 1;
      }
    }
  }
  Json out = Json::array();
  for (auto& [name, r] : rows) {
    out.push_back(std::move(r));
  }
  return out;
}

void check_queues(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (!valid_queue(name)) {
      bad_usage(fmt::format("invalid queue name '{}': {}", name, k_queue_rule));
    }
  }
}

void queue_concurrency(const Spool& spool, const std::string& name, std::optional<std::int64_t> n) {
  spool.update_config([&](Config& c) {
    QueueSettings q = c.queue(name);
    q.concurrency = n;
    c.set_queue(name, q);
    return true;
  });
}

void queue_pause(const Spool& spool, const std::vector<std::string>& names, bool paused) {
  spool.update_config([&](Config& c) {
    for (const std::string& name : names) {
      QueueSettings q = c.queue(name);
      q.paused = paused;
      c.set_queue(name, q);
    }
    return true;
  });
}

} // namespace queuectl::cmd
