// cluster: spools that share work through NATS JetStream (SPEC section 8). Linked only
// into queuectl-cluster, so that the main binary never loads libnats and OpenSSL.
#pragma once

#include "queuectl/commands.hpp"
#include "queuectl/config.hpp"
#include "queuectl/enqueue.hpp"
#include "queuectl/job.hpp"
#include "queuectl/spool.hpp"

#include <optional>
#include <string>
#include <vector>

namespace queuectl::cluster {

// The key-value bucket of the jobs' last known records.
inline constexpr const char* k_jobs_bucket = "QUEUECTL_JOBS";
// A job of queue Q is published on "queuectl.jobs.Q".
inline constexpr const char* k_jobs_subject = "queuectl.jobs.";
// Each state change of job ID is published on "queuectl.events.ID".
inline constexpr const char* k_events_subject = "queuectl.events.";

// How a host is named in the records: "hostname:/spool/path" (one machine may run
// several spools).
std::string host_name(const Spool& spool);
// A job's record in the bucket and in its events: id, state, host, queue, command,
// attempts, max_retries, exit_code, last_error, created_at, updated_at (those it has).
Json record_of(const Job& job, const std::string& host);
// Whether a record's state is final (completed or dead).
bool final_record(const Json& record);

struct JoinArgs {
  std::string servers; // URL[,URL...]
  std::optional<std::string> stream, creds;
};

// The settings `cluster join` stores: the URLs (nats:// added where no scheme is given),
// the stream name, the credentials file made absolute. Error(usage) naming what is wrong.
ClusterSettings parse_join(const JoinArgs& a);

// `cluster join`: reaches the servers, creates the stream and the bucket where missing,
// and stores the settings in config.json. Returns what `cluster status` would.
Json join(Spool& spool, const ClusterSettings& s);
// `cluster leave`: forgets the settings (the stream and its jobs stay). False if the
// spool had joined none.
bool leave(Spool& spool);
// `cluster status --json`: {"servers":[...],"connected":URL,"stream":{...},
// "jobs":{STATE:N},"hosts":{HOST:{STATE:N}}}.
Json status(const Spool& spool);

// `enqueue --cluster`: every job built and checked as a local enqueue would, then
// published (message id = job id) and stored by JetStream before this returns. The ids
// in input order.
JobIds enqueue(const Spool& spool, const cmd::EnqueueRequest& r);

// `show --cluster`: the job's last known record. Error(failure) when no host has taken
// it (it is unknown, or still waiting in the stream).
Json show(const Spool& spool, const std::string& id);
// `wait --cluster`: as cmd::wait_jobs, for jobs on any host, from their records. An id
// that no host has taken yet is waited for (it may still wait in the stream).
int wait(const Spool& spool, const std::vector<std::string>& ids, std::optional<double> timeout,
         std::vector<std::string>* unfinished);

// Lets libnats release what it keeps for the process (threads, buffers), before exit.
void close_library();

} // namespace queuectl::cluster
