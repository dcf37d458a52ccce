// job: the job model (a JSON object), its states, ids and validation.
#pragma once

#include "queuectl/clock.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace queuectl {

// Field order is kept so that files other programs annotate stay as they wrote them.
using Json = nlohmann::ordered_json;

enum class JobState { pending, processing, failed, completed, dead };

inline constexpr std::array<JobState, 5> k_all_states = {
    JobState::pending, JobState::processing, JobState::failed, JobState::completed, JobState::dead};

// "pending" ... "completed" ... "dead": the value of the `state` field.
std::string_view state_name(JobState s);
// The directory of a state: as state_name, but "done" for completed.
std::string_view state_dir(JobState s);
// Accepts every state name, and "done" for completed.
std::optional<JobState> parse_state(std::string_view name);

// `[A-Za-z0-9._-]{1,128}`, not starting with '.'.
bool valid_id(std::string_view id);
// A new unique id that sorts lexically in creation order: 13 hex digits of microseconds
// since the epoch (strictly increasing within a process), '-', 8 random base-32 digits.
std::string generate_id();

// Defaults a job takes from the spool's config when a field is missing.
struct JobDefaults {
  std::int64_t max_retries = 3;
  double timeout = 0;
  std::int64_t priority = 0;
};

class Job {
public:
  Job() = default;
  explicit Job(Json j) : m_json(std::move(j)) {}

  // Parses a job file or argument. Throws Error(Exit::usage) on bad JSON, a value that is
  // not an object, or a field of the wrong type (see validate()).
  static Job parse(std::string_view text);

  // Checks every known field's type and range. `command` is required; `id` is checked
  // only when present. Throws Error(Exit::usage) naming the first bad field.
  void validate() const;

  // Fills what a new job needs: id (generated if missing), state pending, attempts 0,
  // defaults for max_retries/timeout/priority, created_at/updated_at now, exit_code and
  // last_error null. Fields already present win.
  void fill_new(const JobDefaults& defaults, Micros now);

  const Json& json() const { return m_json; }
  Json& json() { return m_json; }

  std::string id() const;
  std::string command() const;
  std::int64_t attempts() const;
  std::int64_t max_retries() const;
  // max_retries + 1: the runs the job may have (no overflow at the largest max_retries).
  std::uint64_t max_runs() const { return static_cast<std::uint64_t>(max_retries()) + 1; }
  std::int64_t priority() const;
  double timeout() const;
  std::optional<Micros> time_field(const char* name) const;
  // When the job may run: next_run_at, else run_at; nullopt when it may run now.
  std::optional<Micros> due_at() const;

  void set_state(JobState s) { m_json["state"] = std::string(state_name(s)); }
  // For a job read from directory `dir`: sets its state from the directory. A file in
  // processing/ whose content does not say "processing" yet is a claimed job whose run has
  // started but whose content the worker has not rewritten (a worker writes the start of a
  // run only once the run lasts, see lifecycle.hpp): that run is counted here, so every
  // reader shows the attempts a run's start adds.
  void read_from(JobState dir);
  // Whether the content already records the run that its being in processing/ means.
  bool run_recorded() const;
  void touch(Micros now) { m_json["updated_at"] = format_time(now); }

  // The file content: compact JSON and a newline.
  std::string dump() const;

private:
  Json m_json = Json::object();
};

} // namespace queuectl
