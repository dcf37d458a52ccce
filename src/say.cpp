#include "queuectl/say.hpp"

#include "queuectl/clock.hpp"
#include "queuectl/error.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <unistd.h>

namespace queuectl {

void say(std::string_view line) {
  static const bool to_file = sys::is_regular_file(STDERR_FILENO);
  try {
    sys::write_all(STDERR_FILENO,
                   to_file ? fmt::format("{} queuectl[{}]: {}\n", format_time(now_micros()).substr(0, 23) + "Z",
                                         sys::own_pid(), line)
                           : fmt::format("queuectl[{}]: {}\n", sys::own_pid(), line),
                   "standard error");
  } catch (const Error&) {
    // nobody reads our messages any more: the work goes on
  }
}

} // namespace queuectl
