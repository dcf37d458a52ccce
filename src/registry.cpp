#include "queuectl/registry.hpp"

#include "queuectl/error.hpp"
#include "queuectl/job.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

namespace queuectl {

namespace {
constexpr std::string_view k_sup_prefix = "supervisor-";
constexpr std::string_view k_worker_prefix = "worker-";

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
constexpr std::size_t k_job_record_size = 130; // a 128-byte id, padding, newline

bool ends_with(std::string_view s, std::string_view x) {
  return s.size() >= x.size() && s.substr(s.size() - x.size()) == x;
}
} // namespace

Registration::Registration(const Spool& spool, RecordKind kind, pid_t supervisor, int count)
    : m_dir(spool.workers_dir()) {
  const pid_t pid = ::getpid();
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
  ::unlinkat(m_dir, tmp.c_str(), 0);
  ::unlinkat(m_dir, m_job_name.c_str(), 0);
  m_lock = sys::create_file_at(m_dir, tmp, j.dump() + "\n", false, spool.path_of("workers", tmp),
                              spool.file_mode());
  sys::lock(m_lock.get(), true);
  if (::renameat(m_dir, tmp.c_str(), m_dir, m_name.c_str()) != 0) {
    throw_errno("cannot register in", spool.path_of("workers", m_name));
  }
  if (!sup) {
    m_job = Fd(::openat(m_dir, m_job_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                        spool.file_mode()));
    set_job(std::nullopt);
  }
}

Registration::~Registration() {
  if (m_dir >= 0 && m_lock) {
    ::unlinkat(m_dir, m_job_name.c_str(), 0);
    ::unlinkat(m_dir, m_name.c_str(), 0);
  }
}

void Registration::set_job(const std::optional<std::string>& id) {
  if (!m_job) {
    return; // advisory only: never fail a job over it
  }
  // One fixed-size pwrite per change (ids are at most 128 bytes): the file never
  // shrinks, so no truncate, and a reader sees one id padded with blanks.
  std::string text = id.value_or("");
  text.resize(k_job_record_size - 1, ' ');
  text += '\n';
  (void)!::pwrite(m_job.get(), text.data(), text.size(), 0);
}

std::vector<WorkerInfo> live_records(const Spool& spool) {
  const int d = spool.workers_dir();
  std::vector<std::string> names;
  sys::for_each_entry(d, spool.path_of("workers", ""), [&](std::string_view name, unsigned char) {
    if ((starts_with(name, k_sup_prefix) || starts_with(name, k_worker_prefix)) && ends_with(name, ".json")) {
      names.emplace_back(name);
    }
    return true;
  });
  std::vector<WorkerInfo> out;
  for (const std::string& name : names) {
    Fd fd(::openat(d, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
      continue;
    }
    if (sys::try_lock(fd.get(), false)) {
      // Nobody holds it: its process is gone. Remove the leftovers.
      const std::string stem = name.substr(0, name.size() - 5);
      ::unlinkat(d, (stem + ".job").c_str(), 0);
      ::unlinkat(d, name.c_str(), 0);
      continue;
    }
    Json j = Json::parse(sys::read_all(fd.get(), name), nullptr, false);
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
      if (auto text = sys::read_file_at(d, job_name, job_name)) {
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

std::size_t live_worker_count(const Spool& spool) {
  std::size_t n = 0;
  for (const WorkerInfo& w : live_records(spool)) {
    n += w.kind == RecordKind::worker ? 1 : 0;
  }
  return n;
}

void wait_for_exit(const Spool& spool, const std::string& file) {
  Fd fd(::openat(spool.workers_dir(), file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    return; // already removed by its owner on exit
  }
  sys::lock(fd.get(), false);
}

} // namespace queuectl
