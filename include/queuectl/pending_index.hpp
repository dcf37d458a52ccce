// pending_index: pending.index, the spool's list of what waits in pending/ and in what
// order, so that a worker can order a million waiting jobs without reading a million
// job files.
//
// One line per job enqueued: "J <priority> <created_us> <due_us> <id>\n", or for a job
// of a queue other than "default" "Q <priority> <created_us> <due_us> <queue> <id>\n".
// Jobs that wait for others (`after`) have no line: the scan reads their files. `enqueue`
// appends the lines of its jobs (O_APPEND, not synced) before it renames them into
// pending/; a worker's scan reads the lines of the names it lists, reads the file of any
// name without one, and rewrites the list when it has grown stale.
//
// The list is advice, never the truth: pending/ is. A line may be missing (a crash, a
// power cut, a drop-in, a rewrite racing an append, a job put back by `retry`): the scan
// then reads that job's file. A line may be stale (the job has moved on, or its batch
// failed): no file answers to it, and it is dropped. A line torn by a crash does not
// parse (it has more or fewer fields than its kind, or a field that is not a number) and is
// skipped. Deleting the file is always safe.
#pragma once

#include "queuectl/job_index.hpp"
#include "queuectl/spool.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace queuectl::pending_index {

inline constexpr const char* k_file = "pending.index";

// `text`, all of it, as a decimal integer.
bool parse_int(std::string_view text, std::int64_t& out);
// The line of a job (its id must be valid: no space, no newline).
void append_line(std::string& out, const IndexEntry& e);
// Parses one line without its newline; false when it is not one (torn, foreign).
bool parse_line(std::string_view line, IndexEntry& out);

// Collects the lines of the jobs of a batch and appends them to pending.index in large
// writes: at 64 KiB, and at flush(). Errors are ignored: the list is advice.
class Appender {
public:
  explicit Appender(const Spool& spool) : m_spool(spool) {}
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;
  ~Appender() { flush(); }
  void add(const Job& job);
  void flush();

private:
  const Spool& m_spool;
  std::string m_buf;
};

// Calls fn(line) for every complete line from byte `offset` to the end; returns the
// offset after the last complete line.
std::uint64_t read_lines(const Spool& spool, std::uint64_t offset, const std::function<void(std::string_view)>& fn);
// The same for the lines that start in [begin, end) (the last may end after `end`), so
// that two readers can share the file; `begin` need not be a line's start.
std::uint64_t read_lines(const Spool& spool, std::uint64_t begin, std::uint64_t end,
                         const std::function<void(std::string_view)>& fn);

// A new pending.index, written in tmp/ and renamed over the old one by commit(). Lines
// appended to the old one after the caller last read it are lost with it (jobs the next
// scan reads from their files). A failed write makes commit() throw; an uncommitted
// rewrite is removed.
class Rewrite {
public:
  explicit Rewrite(const Spool& spool);
  Rewrite(const Rewrite&) = delete;
  Rewrite& operator=(const Rewrite&) = delete;
  ~Rewrite();
  // Whole lines, newline included.
  void add(std::string_view lines);
  // One line without its newline.
  void add_line(std::string_view line);
  void commit();

private:
  void write_out();
  const Spool& m_spool;
  std::string m_name;
  Fd m_fd;
  std::string m_buf;
  bool m_failed = false;
};

} // namespace queuectl::pending_index
