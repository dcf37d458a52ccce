#include "queuectl/job.hpp"

#include "queuectl/error.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

namespace queuectl {

std::string_view state_name(JobState s) {
  switch (s) {
  case JobState::pending:
    return "pending";
  case JobState::held:
    return "held";
  case JobState::processing:
    return "processing";
  case JobState::failed:
    return "failed";
  case JobState::completed:
    return "completed";
  case JobState::dead:
    return "dead";
  }
  return "?";
}

std::string_view state_dir(JobState s) {
  return s == JobState::completed ? "done" : state_name(s);
}

std::optional<JobState> parse_state(std::string_view name) {
  if (name == "done") {
    return JobState::completed;
  }
  for (JobState s : k_all_states) {
    if (name == state_name(s)) {
      return s;
    }
  }
  return std::nullopt;
}

namespace {
// `[A-Za-z0-9._-]*`: the characters of ids and queue names.
bool name_chars(std::string_view s) {
  for (char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}
} // namespace

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128 || id[0] == '.' || id[0] == '-') {
    return false; // a leading '-' would read as an option on every command line
  }
  return name_chars(id);
}

std::string generate_id() {
  static std::mutex mutex;
  static Micros last = 0;
  Micros t = now_micros();
  {
    const std::lock_guard<std::mutex> guard(mutex);
    if (t <= last) {
      t = last + 1;
    }
    last = t;
  }
  static constexpr char k_base32[] = "0123456789abcdefghjkmnpqrstvwxyz";
  std::uint64_t r = sys::random_u64();
  std::string suffix(8, '0');
  for (char& c : suffix) {
    c = k_base32[r & 31];
    r >>= 5;
  }
  return fmt::format("{:013x}-{}", static_cast<std::uint64_t>(t), suffix);
}

std::optional<Job> Job::try_parse(std::string_view text, std::string& why) {
  std::optional<Json> j = parse_json_text(text, why);
  if (!j) {
    return std::nullopt;
  }
  if (!j->is_object()) {
    why = "a job must be a JSON object, not " + std::string(j->type_name());
    return std::nullopt;
  }
  return Job(std::move(*j));
}

Job Job::parse(std::string_view text) {
  std::string why;
  std::optional<Job> job = try_parse(text, why);
  if (!job) {
    bad_usage(why);
  }
  job->validate();
  return std::move(*job);
}

bool valid_queue(std::string_view name) {
  return !name.empty() && name.size() <= 64 && name_chars(name);
}

bool valid_tag(std::string_view tag) {
  std::size_t chars = 0;
  for (unsigned char c : tag) {
    if (c < 0x20 || c == 0x7f) {
      return false;
    }
    chars += (c & 0xC0) != 0x80; // a character's first byte (the JSON parser checked the UTF-8)
  }
  return chars >= 1 && chars <= 64;
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::size_t max_exec_bytes() {
  static const std::size_t max = [] {
    const std::size_t total = sys::arg_max();
    return total > 2 * k_exec_reserve ? total - k_exec_reserve : total / 2;
  }();
  return max;
}

void Job::check_new() const {
  const auto initial = [&](const char* field, const Json& value) {
    const auto it = m_json.find(field);
    return it == m_json.end() || *it == value;
  };
  if (!initial("state", "pending")) {
    bad_usage("field 'state' of a new job must be \"pending\" (or absent): queuectl keeps it");
  }
  if (!initial("attempts", 0)) {
    bad_usage("field 'attempts' of a new job must be 0 (or absent): queuectl counts the runs");
  }
  for (const char* f : {"exit_code", "last_error", "next_run_at"}) {
    if (!initial(f, nullptr)) {
      bad_usage(fmt::format("field '{}' of a new job must be null (or absent): queuectl sets it", f));
    }
  }
}

namespace {

// An integer that fits the job's fields (int64): JSON allows larger ones, which nlohmann
// keeps as unsigned.
bool is_int(const Json& v) {
  constexpr auto k_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return v.is_number_integer() && !(v.is_number_unsigned() && v.get<std::uint64_t>() > k_max);
}

void require(bool ok, const char* field, const char* what) {
  if (!ok) {
    bad_usage(fmt::format("field '{}' must be {}", field, what));
  }
}

void check_time(const Json& j, const char* field) {
  const auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    return;
  }
  require(it->is_string() && parse_time(it->get<std::string>()).has_value(), field,
          "an RFC 3339 time such as \"2026-11-23T05:00:00Z\"");
}

} // namespace

void Job::validate() const {
  const Json& j = m_json;
  if (const auto it = j.find("id"); it != j.end()) {
    require(it->is_string(), "id", "a string");
    if (!valid_id(it->get<std::string>())) {
      bad_usage(fmt::format("invalid id '{}': {}", it->get<std::string>(), k_id_rule));
    }
  }
  const auto cmd = j.find("command");
  if (cmd == j.end()) {
    bad_usage("missing field 'command' (the shell command to run)");
  }
  require(cmd->is_string() && !cmd->get<std::string>().empty(), "command", "a non-empty string");
  // What execve(2) takes: one argument of at most MAX_ARG_STRLEN bytes, and all of them
  // with the environment within ARG_MAX. A job past either could never run.
  std::size_t exec_bytes = sizeof("/bin/sh") + sizeof("-c") + 4 * sizeof(char*);
  const auto argument = [&](const char* field, std::size_t bytes) {
    if (bytes + 1 > k_max_arg) {
      bad_usage(fmt::format("field '{}' is {} bytes: one argument of a command may have at most {} (128 KiB); "
                            "put a longer script in a file",
                            field, bytes, k_max_arg - 1));
    }
    exec_bytes += bytes + 1 + sizeof(char*);
  };
  argument("command", cmd->get_ref<const std::string&>().size());
  if (const auto it = j.find("state"); it != j.end()) {
    require(it->is_string() && parse_state(it->get<std::string>()).has_value(), "state",
            "one of pending, held, processing, failed, completed, dead");
  }
  if (const auto it = j.find("attempts"); it != j.end()) {
    require(is_int(*it) && it->get<std::int64_t>() >= 0, "attempts", "an integer >= 0");
  }
  if (const auto it = j.find("max_retries"); it != j.end()) {
    require(is_int(*it) && it->get<std::int64_t>() >= 0, "max_retries", "an integer >= 0");
  }
  if (const auto it = j.find("priority"); it != j.end()) {
    require(is_int(*it), "priority", "a 64-bit integer");
  }
  if (const auto it = j.find("timeout"); it != j.end()) {
    require(it->is_number() && it->get<double>() >= 0 && std::isfinite(it->get<double>()), "timeout",
            "a number of seconds >= 0");
  }
  for (const char* f : {"run_at", "next_run_at", "created_at", "updated_at"}) {
    check_time(j, f);
  }
  if (const auto it = j.find("exit_code"); it != j.end()) {
    require(it->is_null() || is_int(*it), "exit_code", "an integer or null");
  }
  if (const auto it = j.find("last_error"); it != j.end()) {
    require(it->is_null() || it->is_string(), "last_error", "a string or null");
  }
  if (const auto it = j.find("cwd"); it != j.end()) {
    require(it->is_string() && !it->get<std::string>().empty(), "cwd", "a non-empty string");
  }
  if (const auto it = j.find("env"); it != j.end()) {
    require(it->is_object(), "env", "an object of strings");
    for (const auto& [k, v] : it->items()) {
      if (!valid_env_name(k)) {
        bad_usage(fmt::format("invalid name '{}' in field 'env': use letters, digits and '_', not starting with "
                              "a digit",
                              k));
      }
      require(v.is_string(), "env", "an object of strings");
      argument("env", k.size() + 1 + v.get_ref<const std::string&>().size());
    }
  }
  if (const auto it = j.find("queue"); it != j.end()) {
    require(it->is_string(), "queue", "a string");
    if (!valid_queue(it->get_ref<const std::string&>())) {
      bad_usage(fmt::format("invalid queue '{}': {}", it->get<std::string>(), k_queue_rule));
    }
  }
  if (const auto it = j.find("after"); it != j.end()) {
    require(it->is_array(), "after", "an array of job ids");
    for (const Json& dep : *it) {
      require(dep.is_string(), "after", "an array of job ids");
      if (!valid_id(dep.get_ref<const std::string&>())) {
        bad_usage(fmt::format("invalid job id '{}' in field 'after': {}", dep.get<std::string>(), k_id_rule));
      }
    }
  }
  if (const auto it = j.find("tags"); it != j.end()) {
    require(it->is_array(), "tags", "an array of strings");
    if (it->size() > k_max_tags) {
      bad_usage(fmt::format("field 'tags' has {} tags: at most {} are allowed", it->size(), k_max_tags));
    }
    for (const Json& tag : *it) {
      require(tag.is_string(), "tags", "an array of strings");
      if (!valid_tag(tag.get_ref<const std::string&>())) {
        bad_usage(fmt::format("invalid tag '{}': a tag is 1 to 64 characters without control characters",
                              tag.get<std::string>()));
      }
    }
  }
  if (exec_bytes > max_exec_bytes()) {
    bad_usage(fmt::format("the command and 'env' take {} bytes: more than {} of the {} that execve(2) allows here "
                          "leave for a job (the rest is the worker's environment)",
                          exec_bytes, max_exec_bytes(), max_exec_bytes() + k_exec_reserve));
  }
}

void Job::fill_new(const JobDefaults& defaults, Micros now) {
  Json& j = m_json;
  if (!j.contains("id")) {
    j["id"] = generate_id();
  }
  j["state"] = "pending";
  if (!j.contains("attempts")) {
    j["attempts"] = 0;
  }
  if (!j.contains("max_retries")) {
    j["max_retries"] = defaults.max_retries;
  }
  if (!j.contains("priority")) {
    j["priority"] = defaults.priority;
  }
  if (!j.contains("timeout")) {
    if (defaults.timeout == std::floor(defaults.timeout)) {
      j["timeout"] = static_cast<std::int64_t>(defaults.timeout);
    } else {
      j["timeout"] = defaults.timeout;
    }
  }
  const std::string ts = format_time(now);
  if (!j.contains("created_at") || j["created_at"].is_null()) {
    j["created_at"] = ts;
  }
  j["updated_at"] = ts;
  if (!j.contains("exit_code")) {
    j["exit_code"] = nullptr;
  }
  if (!j.contains("last_error")) {
    j["last_error"] = nullptr;
  }
}

std::optional<JobState> Job::state() const {
  const auto it = m_json.find("state");
  if (it == m_json.end() || !it->is_string()) {
    return std::nullopt;
  }
  return parse_state(it->get_ref<const std::string&>());
}

std::string Job::queue() const {
  const auto it = m_json.find("queue");
  return it != m_json.end() && it->is_string() ? it->get<std::string>() : std::string(k_default_queue);
}

namespace {
std::vector<std::string> strings_of(const Json& j, const char* field) {
  std::vector<std::string> out;
  if (const auto it = j.find(field); it != j.end() && it->is_array()) {
    for (const Json& v : *it) {
      if (v.is_string()) {
        out.push_back(v.get<std::string>());
      }
    }
  }
  return out;
}
} // namespace

std::vector<std::string> Job::after() const {
  return strings_of(m_json, "after");
}

std::vector<std::string> Job::tags() const {
  return strings_of(m_json, "tags");
}

bool Job::has_tag(std::string_view tag) const {
  if (const auto it = m_json.find("tags"); it != m_json.end() && it->is_array()) {
    for (const Json& v : *it) {
      if (v.is_string() && v.get_ref<const std::string&>() == tag) {
        return true;
      }
    }
  }
  return false;
}

bool Job::written_by_queuectl() const {
  const auto it = m_json.find("created_at");
  return it != m_json.end() && it->is_string();
}

void Job::read_from(JobState dir, std::string_view stem) {
  if (!m_json.contains("id")) {
    m_json["id"] = std::string(stem);
  }
  if (dir == JobState::processing) {
    const auto s = state();
    if (!s || *s == JobState::pending) {
      count_run(); // claimed: the run counts from the claim's rename
    }
  }
  set_state(dir);
}

void Job::set_outcome(std::optional<int> exit_code, const std::string& error) {
  m_json["exit_code"] = exit_code ? Json(*exit_code) : Json(nullptr);
  m_json["last_error"] = error.empty() ? Json(nullptr) : Json(error);
  m_json.erase("next_run_at");
}

void Job::mark_dependency_failed(const std::string& dep) {
  m_json["exit_code"] = nullptr;
  m_json["last_error"] = fmt::format("dependency {} failed", dep);
  m_json.erase("next_run_at");
}

void Job::mark_cancelled() {
  m_json["last_error"] = "cancelled";
  m_json.erase("next_run_at");
}

void Job::adopt_dropin(std::string_view stem, Micros file_mtime) {
  if (!m_json.contains("id")) {
    m_json["id"] = std::string(stem);
  }
  m_json["created_at"] = format_time(file_mtime);
}

Job Job::quarantine_record(const Json& fields, const std::string& id, const std::string& why, const std::string& orig,
                           Micros now) {
  Job rec(fields.is_object() ? fields : Json::object());
  if (!rec.time_field("created_at")) {
    rec.m_json["created_at"] = format_time(now);
  }
  rec.m_json["id"] = id;
  rec.set_state(JobState::dead);
  rec.touch(now);
  rec.m_json["last_error"] = why;
  rec.m_json["original_file"] = orig;
  rec.clear_retry_time();
  return rec;
}

void Job::reset_for_retry() {
  m_json["attempts"] = 0;
  m_json.erase("next_run_at");
}

std::string Job::text(const char* name) const {
  const auto it = m_json.find(name);
  return it != m_json.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string Job::id() const {
  return text("id");
}

std::string Job::command() const {
  return text("command");
}

namespace {
std::int64_t int_field(const Json& j, const char* name, std::int64_t dflt) {
  const auto it = j.find(name);
  return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : dflt;
}
} // namespace

std::int64_t Job::attempts() const {
  return int_field(m_json, "attempts", 0);
}
std::int64_t Job::max_retries() const {
  return int_field(m_json, "max_retries", 3);
}
std::int64_t Job::priority() const {
  return int_field(m_json, "priority", 0);
}

double Job::timeout() const {
  const auto it = m_json.find("timeout");
  return it != m_json.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::optional<Micros> Job::time_field(const char* name) const {
  const auto it = m_json.find(name);
  if (it == m_json.end() || !it->is_string()) {
    return std::nullopt;
  }
  return parse_time(it->get<std::string>());
}

std::optional<Micros> Job::due_at() const {
  if (auto t = time_field("next_run_at")) {
    return t;
  }
  return time_field("run_at");
}

std::string Job::dump() const {
  // Invalid UTF-8 in a field must not make a job unwritable: replace it.
  return m_json.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

} // namespace queuectl
