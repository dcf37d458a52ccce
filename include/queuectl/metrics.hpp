// metrics: the Prometheus text exposition of a spool (`queuectl metrics`, GET /metrics).
#pragma once

#include <string>

namespace queuectl {

class Spool;

// Gauges (jobs per state, live workers, the oldest pending job's age) and the durable
// counters and run-time histogram (see counters.hpp), in the text format 0.0.4.
std::string prometheus_text(const Spool& spool);

} // namespace queuectl
