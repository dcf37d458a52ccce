#include "queuectl/counters.hpp"

#include "queuectl/clock.hpp"
#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdlib>
#include <span>
#include <vector>

namespace queuectl {

namespace {

constexpr const char* k_counter_names[] = {"runs_completed", "runs_failed", "jobs_dead", "jobs_retried"};

std::vector<std::string> line_names() {
  std::vector<std::string> names(std::begin(k_counter_names), std::end(k_counter_names));
  for (double b : k_duration_buckets) {
    names.push_back(fmt::format("duration_le_{}", b));
  }
  names.emplace_back("duration_le_inf");
  names.emplace_back("duration_sum_us");
  return names;
}

std::vector<std::uint64_t> parse(const std::string& text, std::size_t n) {
  std::vector<std::uint64_t> v(n, 0);
  std::size_t i = 0;
  for (std::size_t pos = 0; pos < text.size() && i < n; ++i) {
    const auto sp = text.find(' ', pos);
    const auto nl = text.find('\n', pos);
    if (sp == std::string::npos || nl == std::string::npos || sp > nl) {
      break;
    }
    v[i] = std::strtoull(text.c_str() + sp + 1, nullptr, 10);
    pos = nl + 1;
  }
  return v;
}

std::string render(const std::vector<std::string>& names, const std::vector<std::uint64_t>& v) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += fmt::format("{:<20} {:020}\n", names[i], v[i]);
  }
  return out;
}

CounterSnapshot snapshot_of(const std::vector<std::uint64_t>& v) {
  CounterSnapshot s;
  std::size_t i = 0;
  for (auto& c : s.counters) {
    c = v[i++];
  }
  for (auto& b : s.buckets) {
    b = v[i++];
  }
  s.duration_sum_us = v[i];
  return s;
}

} // namespace

CounterEvent outcome_event(JobState to, std::optional<double> completed_seconds) {
  CounterEvent e;
  if (to == JobState::completed) {
    e.a = Counter::runs_completed;
    e.completed_seconds = completed_seconds;
  } else {
    e.a = Counter::runs_failed;
    e.b = to == JobState::failed ? Counter::jobs_retried : Counter::jobs_dead;
  }
  return e;
}

bool Counters::add(const CounterEvent* events, std::size_t n) {
  static const std::vector<std::string> names = line_names();
  const sys::Dir& root = m_spool.root_dir();
  if (!m_file) {
    try {
      m_file = sys::LockFile::open(root, "stats", m_spool.file_mode());
    } catch (const Error&) {
      return false;
    }
  }
  try {
    m_file.lock();
    std::vector<std::uint64_t> v = parse(sys::read_at(m_file.fd(), 4096, 0, m_file.what()), names.size());
    for (const CounterEvent& e : std::span(events, n)) {
      for (const auto& c : {e.a, e.b}) {
        if (c) {
          ++v[static_cast<std::size_t>(*c)];
        }
      }
      if (e.completed_seconds) {
        std::size_t bucket = k_duration_buckets.size();
        for (std::size_t i = 0; i < k_duration_buckets.size(); ++i) {
          if (*e.completed_seconds <= k_duration_buckets[i]) {
            bucket = i;
            break;
          }
        }
        ++v[static_cast<std::size_t>(Counter::count) + bucket];
        v.back() += static_cast<std::uint64_t>(seconds_to_micros(*e.completed_seconds));
      }
    }
    sys::write_all_at(m_file.fd(), render(names, v), 0, m_file.what());
  } catch (const Error&) {
    m_file.unlock();
    return false;
  }
  m_file.unlock();
  return true;
}

CounterSnapshot Counters::read(const Spool& spool) {
  static const std::vector<std::string> names = line_names();
  const auto text = spool.root_dir().read_file("stats");
  return snapshot_of(parse(text.value_or(""), names.size()));
}

} // namespace queuectl
