// say: the one shape of the lines that supervisors, workers and the cluster's intake write
// on standard error: "queuectl[PID]: line", after the time when standard error is a file
// (a detached supervisor's detached.log); a terminal needs none, and the journal adds its
// own.
#pragma once

#include <string_view>

namespace queuectl {

// Writes the line; a standard error nobody reads any more is no error (the work goes on).
void say(std::string_view line);

} // namespace queuectl
