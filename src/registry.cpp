#include "queuectl/registry.hpp"

#include "queuectl/error.hpp"
#include "queuectl/job.hpp"
#include "queuectl/json_text.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

namespace queuectl {

namespace {
constexpr std::string_view k_sup_prefix = "supervisor-";
constexpr std::string_view k_worker_prefix = "worker-";

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
constexpr std::size_t k_job_record_size = 130; // a 128-byte id, padding, newline

bool ends_with(std::string_view s, std::string_view x) {
  return s.size() >= x.size() && s.substr(s.size() - x.size()) == x;
}
} // namespace

Registration::Registration(const Spool& spool, RecordKind kind, pid_t supervisor, int count) : m_dir(&spool.workers()) {
  const pid_t pid = sys::own_pid();
  const bool sup = kind == RecordKind::supervisor;
  m_name = fmt::format("{}{}.json", sup ? k_sup_prefix : k_worker_prefix, pid);
  m_job_name = fmt::format("{}{}.job", k_worker_prefix, pid);
  Json j = {{"pid", pid}, {"since", format_time(now_micros())}};
  if (sup) {
    j["count"] = count;
  } else {
    j["supervisor"] = supervisor;
  }
  const std::string tmp = "." + m_name + ".tmp";
  // A record with our pid can only be a stale one of a dead process.
  m_dir->remove_quietly(tmp);
  m_dir->remove_quietly(m_job_name);
  m_lock = sys::LockFile(m_dir->create(tmp, j.dump() + "\n", false, spool.file_mode()), m_dir->path_of(m_name));
  m_lock.lock();
  m_dir->move_over(tmp, *m_dir, m_name);
  if (!sup) {
    m_job = m_dir->try_open(m_job_name, O_WRONLY | O_CREAT | O_TRUNC, spool.file_mode());
    set_job(std::nullopt);
  }
}

Registration::~Registration() {
  if (m_dir && m_lock) {
    m_dir->remove_quietly(m_job_name);
    m_dir->remove_quietly(m_name);
  }
}

void Registration::set_job(const std::optional<std::string>& id) {
  if (!m_job || (m_shown && *m_shown == id)) {
    return; // advisory only: never fail a job over it; unchanged: nothing to write
  }
  // One fixed-size pwrite per change (ids are at most 128 bytes): the file never
  // shrinks, so no truncate, and a reader sees one id padded with blanks.
  std::string text = id.value_or("");
  text.resize(k_job_record_size - 1, ' ');
  text += '\n';
  try {
    sys::write_all_at(m_job.get(), text, 0, m_dir->path_of(m_job_name));
    m_shown = id; // only once written: a failed write is tried again
  } catch (const Error&) {
    // advice for `worker status` only: the job runs all the same
  }
}

std::vector<WorkerInfo> live_records(const Spool& spool) {
  const sys::Dir& d = spool.workers();
  std::vector<std::string> names;
  d.for_each([&](std::string_view name, unsigned char) {
    if ((starts_with(name, k_sup_prefix) || starts_with(name, k_worker_prefix)) && ends_with(name, ".json")) {
      names.emplace_back(name);
    }
    return true;
  });
  std::vector<WorkerInfo> out;
  for (const std::string& name : names) {
    Fd fd = d.try_open(name, O_RDONLY);
    if (!fd) {
      continue;
    }
    if (sys::try_lock(fd.get(), false, d.path_of(name))) {
      // Nobody holds it: its process is gone. Remove the leftovers.
      const std::string stem = name.substr(0, name.size() - 5);
      d.remove_quietly(stem + ".job");
      d.remove_quietly(name);
      continue;
    }
    std::string why;
    const Json j = parse_json_text(sys::read_all(fd.get(), d.path_of(name)), why).value_or(Json());
    if (!j.is_object()) {
      continue;
    }
    WorkerInfo w;
    w.kind = starts_with(name, k_sup_prefix) ? RecordKind::supervisor : RecordKind::worker;
    const auto number = [&](const char* k) {
      const auto it = j.find(k);
      return it != j.end() && it->is_number_integer() ? it->get<pid_t>() : 0;
    };
    w.pid = number("pid");
    w.supervisor = number("supervisor");
    w.since = j.contains("since") && j["since"].is_string() ? j["since"].get<std::string>() : std::string();
    w.file = name;
    if (w.kind == RecordKind::worker) {
      const std::string job_name = name.substr(0, name.size() - 5) + ".job";
      if (auto text = d.read_file(job_name)) {
        while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) {
          text->pop_back();
        }
        if (!text->empty()) {
          w.job = *text;
        }
      }
    }
    out.push_back(std::move(w));
  }
  return out;
}

namespace {
std::string cancel_name(const std::string& id) {
  return "cancel-" + id;
}
} // namespace

CancelRequest::CancelRequest(const Spool& spool, std::string id) : m_dir(spool.workers()), m_name(cancel_name(id)) {
  m_dir.create(m_name, "", false, 0644, true);
}

CancelRequest::~CancelRequest() {
  m_dir.remove_quietly(m_name);
}

void CancelRequest::renew() const {
  if (!m_dir.touch(m_name)) {
    m_dir.create(m_name, "", false, 0644, true); // removed meanwhile (a stale sweep)
  }
}

bool CancelRequest::is_request(std::string_view name, const std::string& id) {
  return name == cancel_name(id);
}

void remove_stale_cancel_requests(const Spool& spool, Micros now) {
  const sys::Dir& d = spool.workers();
  std::vector<std::string> stale;
  d.for_each([&](std::string_view name, unsigned char) {
    if (starts_with(name, "cancel-")) {
      stale.emplace_back(name);
    }
    return true;
  });
  for (const std::string& name : stale) {
    const auto st = d.stat(name);
    if (st && now - sys::mtime_micros(*st) > 60'000'000 &&
        spool.find(name.substr(std::string_view("cancel-").size())) != JobState::processing) {
      d.remove_quietly(name);
    }
  }
}

bool cancel_requested(const Spool& spool, const std::string& id) {
  // A live `cancel` renews its request every second; one left by a killed `cancel` goes
  // stale and must not cancel the job when it runs again.
  const auto st = spool.workers().stat(cancel_name(id));
  return st && now_micros() - sys::mtime_micros(*st) < k_cancel_fresh;
}

std::size_t live_worker_count(const Spool& spool) {
  std::size_t n = 0;
  for (const WorkerInfo& w : live_records(spool)) {
    n += w.kind == RecordKind::worker ? 1 : 0;
  }
  return n;
}

void wait_for_exit(const Spool& spool, const std::string& file) {
  const sys::LockFile l = sys::LockFile::open_existing(spool.workers(), file);
  if (l) {
    l.lock(false); // shared: granted once the owner's exclusive lock is gone with it
  }                // else: already removed by its owner on exit
}

} // namespace queuectl
