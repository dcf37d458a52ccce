// logs: printing a job's output log, and following it while the job runs.
#pragma once

#include <string>

namespace queuectl {

class Spool;

// Writes the job's log (from whichever state directory holds it) to `out`. With
// `follow`, keeps writing new output as it is appended (woken by inotify) and returns
// once the job is in done/ or dead/ and everything has been written. Throws
// Error(failure) for an unknown job.
void print_log(const Spool& spool, const std::string& id, bool follow, int out);

} // namespace queuectl
