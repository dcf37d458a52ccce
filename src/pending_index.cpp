#include "queuectl/pending_index.hpp"

#include "queuectl/error.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <charconv>

namespace queuectl::pending_index {

namespace {

constexpr std::size_t k_write_at = 64 << 10;
constexpr std::size_t k_read_chunk = 1 << 20;
constexpr std::size_t k_max_line = 512; // a valid line is at most about 200 bytes

} // namespace

bool parse_int(std::string_view text, std::int64_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

void append_line(std::string& out, const IndexEntry& e) {
  if (e.queue.empty()) {
    fmt::format_to(std::back_inserter(out), "J {} {} {} {}\n", e.priority, e.created, e.due, e.id);
  } else {
    fmt::format_to(std::back_inserter(out), "Q {} {} {} {} {}\n", e.priority, e.created, e.due, e.queue, e.id);
  }
}

bool parse_line(std::string_view line, IndexEntry& out) {
  std::string_view fields[6];
  std::size_t n = 0;
  while (!line.empty()) {
    const std::size_t sp = line.find(' ');
    if (n == 6) {
      return false; // a torn line followed by a whole one: more fields than a line has
    }
    fields[n++] = line.substr(0, sp);
    if (sp == std::string_view::npos) {
      break;
    }
    line.remove_prefix(sp + 1);
  }
  const bool queued = n == 6 && fields[0] == "Q" && valid_queue(fields[4]) && fields[4] != k_default_queue;
  if (!(queued || (n == 5 && fields[0] == "J")) || !valid_id(fields[n - 1])) {
    return false;
  }
  std::int64_t prio = 0;
  std::int64_t created = 0;
  std::int64_t due = 0;
  if (!parse_int(fields[1], prio) || !parse_int(fields[2], created) || !parse_int(fields[3], due)) {
    return false;
  }
  out.id.assign(fields[n - 1]);
  out.queue.assign(queued ? fields[4] : std::string_view());
  out.waits = false;
  out.from = JobState::pending;
  out.priority = prio;
  out.created = created;
  out.due = due;
  return true;
}

void Appender::add(const Job& job) {
  const std::string id = job.id();
  if (!valid_id(id) || job.state() != JobState::pending) {
    return; // a held job goes to held/, not pending/
  }
  const IndexEntry e = index_entry_of(job, id, JobState::pending, job.priority(), 0);
  if (e.waits) {
    return; // what it waits for is in its file, which the scan reads
  }
  append_line(m_buf, e);
  if (m_buf.size() >= k_write_at) {
    flush();
  }
}

void Appender::flush() {
  if (m_buf.empty()) {
    return;
  }
  try {
    m_spool.root_dir().append(k_file, m_buf, m_spool.file_mode());
  } catch (const Error&) {
    // advice: a scan reads the job files the list lacks
  }
  m_buf.clear();
}

std::uint64_t read_lines(const Spool& spool, std::uint64_t offset, const std::function<void(std::string_view)>& fn) {
  return read_lines(spool, offset, UINT64_MAX, fn);
}

std::uint64_t read_lines(const Spool& spool, std::uint64_t begin, std::uint64_t end,
                         const std::function<void(std::string_view)>& fn) {
  const Fd fd = spool.root_dir().try_open(k_file, O_RDONLY);
  if (!fd) {
    return begin;
  }
  const std::string what = spool.root_dir().path_of(k_file);
  std::uint64_t pos = begin;        // where the next read starts
  std::uint64_t line_start = begin; // where the unfinished line starts
  std::string partial;              // the unfinished line, across reads
  bool skipping = false;            // in a line to skip: longer than any line, or begun before `begin`
  if (begin > 0) {
    // Lines that start at `begin` or later: the one under way there belongs to the reader
    // of the range before.
    pos = begin - 1;
    skipping = true;
  }
  for (;;) {
    const std::string chunk = sys::read_at(fd.get(), k_read_chunk, static_cast<off_t>(pos), what);
    if (chunk.empty()) {
      return line_start; // an unfinished last line (an append under way, or torn) is left
    }
    pos += chunk.size();
    std::string_view rest = chunk;
    for (std::size_t nl; (nl = rest.find('\n')) != std::string_view::npos;) {
      if (!skipping) {
        if (line_start >= end) {
          return line_start;
        }
        if (partial.empty()) {
          fn(rest.substr(0, nl));
        } else {
          partial.append(rest.substr(0, nl));
          fn(partial);
        }
      }
      partial.clear();
      skipping = false;
      rest.remove_prefix(nl + 1);
      line_start = pos - rest.size();
    }
    if (!skipping) {
      if (line_start >= end) {
        return line_start;
      }
      partial.append(rest);
      if (partial.size() > k_max_line) {
        skipping = true;
        partial.clear();
      }
    }
  }
}

Rewrite::Rewrite(const Spool& spool) : m_spool(spool), m_name(spool.temp_name("index")) {
  m_fd = spool.tmp().create(m_name, "", false, spool.file_mode());
}

Rewrite::~Rewrite() {
  if (m_fd) {
    m_spool.tmp().remove_quietly(m_name);
  }
}

void Rewrite::write_out() {
  if (!m_failed && !m_buf.empty()) {
    try {
      sys::write_all(m_fd.get(), m_buf, m_spool.tmp().path_of(m_name));
    } catch (const Error&) {
      m_failed = true; // reported by commit()
    }
  }
  m_buf.clear();
}

void Rewrite::add(std::string_view lines) {
  m_buf += lines;
  if (m_buf.size() >= k_write_at) {
    write_out();
  }
}

void Rewrite::add_line(std::string_view line) {
  m_buf += line;
  m_buf += '\n';
  if (m_buf.size() >= k_write_at) {
    write_out();
  }
}

void Rewrite::commit() {
  write_out();
  if (m_failed) {
    fail(fmt::format("cannot write {}", m_spool.tmp().path_of(m_name)));
  }
  m_spool.tmp().move_over(m_name, m_spool.root_dir(), k_file);
  m_fd.reset();
}

} // namespace queuectl::pending_index
