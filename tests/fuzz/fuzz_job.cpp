// libFuzzer target: a job file's text, as a worker meets it in pending/ and as `enqueue`
// and the API take it: measured, parsed, validated, checked as a new job, salvaged for a
// quarantine record, read for the index and as listings show it, written back. Anything
// but a clean refusal (Error) is a bug: a crash, a sanitizer report, another exception.
#include "queuectl/error.hpp"
#include "queuectl/job.hpp"
#include "queuectl/job_index.hpp"
#include "queuectl/json_text.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace queuectl;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)salvage_members(text).dump();
  (void)index_entry("fuzz", JobState::pending, text, 0, 0);
  std::string why;
  std::optional<Job> job = Job::try_parse(text, why);
  if (!job) {
    return 0;
  }
  try {
    job->validate();
    job->check_new();
  } catch (const Error&) {
    // refused, as it may be
  }
  for (JobState s : k_all_states) {
    Job copy = *job;
    copy.read_from(s, "fuzz");
    (void)copy.dump();
  }
  (void)job->due_at();
  (void)job->max_runs();
  (void)job->timeout();
  (void)job->text("command");
  job->fill_new(JobDefaults(), 0);
  (void)job->dump();
  return 0;
}
