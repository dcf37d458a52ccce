// job: the job model (a JSON object), its states, ids and validation.
#pragma once

#include "queuectl/clock.hpp"
#include "queuectl/json_text.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace queuectl {

// Json (json_text.hpp) is nlohmann's ordered_json: field order is kept so that files
// other programs annotate stay as they wrote them.

enum class JobState { pending, held, processing, failed, completed, dead };

inline constexpr std::size_t k_state_count = 6;
// In the order a job moves forward through them (a scan in this order finds a job that
// moves forward while it is looked for).
inline constexpr std::array<JobState, k_state_count> k_all_states = {
    JobState::pending, JobState::held, JobState::processing, JobState::failed, JobState::completed, JobState::dead};

// "pending" ... "completed" ... "dead": the value of the `state` field.
std::string_view state_name(JobState s);
// The directory of a state: as state_name, but "done" for completed.
std::string_view state_dir(JobState s);
// Accepts every state name, and "done" for completed.
std::optional<JobState> parse_state(std::string_view name);

// `[A-Za-z0-9._-]{1,128}`, not starting with '.' or '-'.
bool valid_id(std::string_view id);
inline constexpr const char* k_id_rule = "use 1 to 128 of A-Z a-z 0-9 . _ -, not starting with '.' or '-'";

// A queue name: `[A-Za-z0-9._-]{1,64}`.
bool valid_queue(std::string_view name);
inline constexpr const char* k_queue_rule = "use 1 to 64 of A-Z a-z 0-9 . _ -";
inline constexpr const char* k_default_queue = "default";
// A tag: 1 to 64 bytes of UTF-8 text without control characters.
bool valid_tag(std::string_view tag);
inline constexpr std::size_t k_max_tags = 32;

// A shell variable name: `[A-Za-z_][A-Za-z0-9_]*`.
bool valid_env_name(std::string_view name);

// The kernel's limit for one argument or environment string, its NUL included
// (MAX_ARG_STRLEN).
inline constexpr std::size_t k_max_arg = 128 * 1024;
// Of ARG_MAX, what a job's command and env may take: the rest is left for the worker's
// own environment, which the job inherits.
inline constexpr std::size_t k_exec_reserve = 256 * 1024;
std::size_t max_exec_bytes();
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
  // The one parse-or-refuse of a job text: a JSON object (see json_text.hpp for what is
  // refused before parsing), fields not yet validated. nullopt with `why` otherwise.
  static std::optional<Job> try_parse(std::string_view text, std::string& why);

  // Checks every known field's type and range. `command` is required; `id` is checked
  // only when present. Throws Error(Exit::usage) naming the first bad field.
  void validate() const;

  // A new job may carry the fields only queuectl sets with their initial values only:
  // state "pending", attempts 0, exit_code, last_error and next_run_at null (SPEC section
  // 5). Throws Error(Exit::usage) naming the field.
  void check_new() const;

  // Fills what a new job needs: id (generated if missing), state pending, attempts 0,
  // defaults for max_retries/timeout/priority, created_at/updated_at now, exit_code and
  // last_error null. Fields already present win.
  void fill_new(const JobDefaults& defaults, Micros now);

  const Json& json() const { return m_json; }
  Json& json() { return m_json; }

  // A string field; "" when it is missing or not a string (a file may hold anything).
  std::string text(const char* name) const;
  std::string id() const;
  std::string command() const;
  std::int64_t attempts() const;
  std::int64_t max_retries() const;
  // max_retries + 1: the runs the job may have (no overflow at the largest max_retries).
  std::uint64_t max_runs() const { return static_cast<std::uint64_t>(max_retries()) + 1; }
  std::int64_t priority() const;
  double timeout() const;
  // The `queue` field; "default" when it is missing.
  std::string queue() const;
  // The `after` field (the ids it waits for) and the `tags` field; empty when missing.
  std::vector<std::string> after() const;
  std::vector<std::string> tags() const;
  bool has_tag(std::string_view tag) const;
  std::optional<Micros> time_field(const char* name) const;
  // When the job may run: next_run_at, else run_at; nullopt when it may run now.
  std::optional<Micros> due_at() const;

  // The `state` field, when it names a state.
  std::optional<JobState> state() const;
  void set_state(JobState s) { m_json["state"] = std::string(state_name(s)); }
  // Whether queuectl wrote this file: it always sets created_at. A job without it is a
  // drop-in that no worker has taken yet.
  bool written_by_queuectl() const;
  // For a job read from directory `dir` under file name `<stem>.json`: what every reader
  // shows. The state comes from the directory; a drop-in without an id takes its file's
  // name. A file in processing/ whose content does not say "processing" (or an outcome)
  // is a claimed job whose run has started but whose content the worker has not
  // rewritten (it writes the start of a run only once the run lasts, see transition.hpp):
  // that run is counted, so every reader shows the attempts a run's start adds.
  void read_from(JobState dir, std::string_view stem);
  void touch(Micros now) { m_json["updated_at"] = format_time(now); }

  // --- the typed changes of the lifecycle (see transition.hpp) ---
  // A run starts: attempts + 1.
  void count_run() { m_json["attempts"] = attempts() + 1; }
  // Records how the last run ended; `error` empty for success (last_error null).
  // Removes next_run_at.
  void set_outcome(std::optional<int> exit_code, const std::string& error);
  void schedule_retry(Micros at) { m_json["next_run_at"] = format_time(at); }
  // Cancelled by a person: last_error "cancelled", no retry.
  void mark_cancelled();
  // A job it waits for is dead: it never runs (last_error "dependency ID failed").
  void mark_dependency_failed(const std::string& dep);
  // Run again from scratch (`dlq retry`): attempts 0, next_run_at removed; exit_code and
  // last_error kept until the next run.
  void reset_for_retry();
  // Waiting again after its backoff (failed -> pending): next_run_at removed.
  void clear_retry_time() { m_json.erase("next_run_at"); }
  // A drop-in taken for its first run: the id of its file's name `stem` unless it has
  // one, and created_at the file's modification time.
  void adopt_dropin(std::string_view stem, Micros file_mtime);
  // The dead/ record of a file that is not a valid job: what could be salvaged of it
  // (`fields`, an object or null), with id `id`, state dead, last_error `why` and
  // original_file `orig` (the name it is kept under); created_at kept if it is a time.
  static Job quarantine_record(const Json& fields, const std::string& id, const std::string& why,
                               const std::string& orig, Micros now);

  // The file content: compact JSON and a newline.
  std::string dump() const;

private:
  Json m_json = Json::object();
};

} // namespace queuectl
