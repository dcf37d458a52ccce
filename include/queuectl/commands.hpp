// commands: what the CLI and the HTTP API both do to jobs, as one function each (the
// faces parse and print; these decide and act).
#pragma once

#include <string>

namespace queuectl {

class Spool;

// Pending or failed -> dead ("cancelled"), counted as a dead job. Error(failure) for
// any other state or no such job.
void cancel_job(const Spool& spool, const std::string& id);

// Dead -> pending, attempts 0, counted as a retried job. Error(failure) for any other
// state, a quarantine record, or no such job.
void retry_dead_job(const Spool& spool, const std::string& id);

} // namespace queuectl
