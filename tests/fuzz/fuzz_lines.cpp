// libFuzzer target: the input of `enqueue -`, one JSON job per line, checked as the
// command checks it before it writes anything (every line, ids unique), with and without
// command-line overrides. Anything but a clean refusal (Error) is a bug.
#include "queuectl/enqueue.hpp"
#include "queuectl/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

using namespace queuectl;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  JobOverrides none;
  JobOverrides some;
  some.priority = 3;
  some.env = {{"LANG", "C"}};
  for (const JobOverrides* o : {&none, &some}) {
    try {
      check_batch(input, *o);
    } catch (const Error&) {
      // refused, as it may be
    }
  }
  return 0;
}
