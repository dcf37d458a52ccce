// intake: a joined spool's share of the cluster's work (SPEC section 8). A child of
// `worker start`'s supervisor, in queuectl-cluster: it takes from the stream's shared
// durable consumer as many jobs as the supervisor has idle workers, writes each durably
// into pending/ and only then acknowledges it, and publishes every state change of the
// jobs it took to queuectl.events.<id> and the QUEUECTL_JOBS bucket.
#pragma once

#include <filesystem>

namespace queuectl::cluster {

// The durable consumer every host's intake shares.
inline constexpr const char* k_intake_consumer = "QUEUECTL_INTAKE";
// How long a job taken by a host that then died waits before the stream offers it again.
inline constexpr int k_ack_wait_seconds = 30;

// Runs until SIGTERM or SIGINT (or until its parent, the supervisor, dies). Returns the
// exit status.
int run_intake(const std::filesystem::path& root);

} // namespace queuectl::cluster
