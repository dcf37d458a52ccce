// Helpers for unit tests on a real spool in a temporary directory.
#pragma once

#include "queuectl/enqueue.hpp"
#include "queuectl/error.hpp"
#include "queuectl/spool.hpp"
#include "queuectl/sys.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

namespace queuectl::test {

inline std::string enqueue_cmd(Spool& s, const std::string& cmd, const std::optional<std::string>& id = std::nullopt) {
  JobOverrides o;
  o.command = cmd;
  o.id = id;
  return enqueue_one(s, Json(), o);
}

inline std::size_t files_in(const std::filesystem::path& dir) {
  return static_cast<std::size_t>(
      std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()));
}

// The exit code an Error thrown by `fn` carries; Exit::ok when nothing is thrown.
inline Exit code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return Exit::ok;
}

// A job file's content as it is on disk (not as the spool's readers present it).
inline Json raw(const Spool& s, JobState st, const std::string& id) {
  return Json::parse(s.dir(st).read_file(job_file(id)).value_or("null"));
}

// Writes job files straight into `dir` (as another program may), created_at scrambled
// with ties (every 1000 apart share a second) that the id orders: "j0" ... "j<n-1>".
inline void write_scrambled_jobs(const std::filesystem::path& dir, int n) {
  for (int i = 0; i < n; ++i) {
    const Micros created = 1'700'000'000'000'000 + static_cast<Micros>((i * 7919) % 1000) * 1'000'000;
    std::ofstream(dir / ("j" + std::to_string(i) + ".json"))
        << Json{{"id", "j" + std::to_string(i)}, {"command", "true"}, {"created_at", format_time(created)}}.dump();
  }
}

} // namespace queuectl::test
