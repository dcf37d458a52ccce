// queuectl-cluster: the queuectl command line with the NATS client linked in. The
// cluster's commands (`cluster ...`, `enqueue --cluster`) execute it, so that the main
// binary never loads libnats and OpenSSL.
#include "queuectl/cli.hpp"
#include "queuectl/cli_commands.hpp"
#include "queuectl/cli_text.hpp"
#include "queuectl/cluster.hpp"
#include "queuectl/error.hpp"
#include "queuectl/intake.hpp"
#include "queuectl/sys.hpp"

#include <fmt/format.h>

#include <unistd.h>

namespace queuectl::cli {
namespace {

int run_cluster(const std::string& command, Args& a, char**) {
  const std::filesystem::path root = Spool::resolve(a.spool);
  if (command == "cluster join") {
    const ClusterSettings s = cluster::parse_join({a.servers, a.stream, a.creds}); // bad usage before the spool
    Spool spool = Spool::open(root);
    const Json st = cluster::join(spool, s);
    out(fmt::format("joined {} with {}: stream {}\n", spool.root().string(), st.value("connected", ""), s.stream));
    return 0;
  }
  if (command == "cluster leave") {
    Spool spool = Spool::open_existing(root);
    out(cluster::leave(spool) ? "left the cluster (its stream and jobs stay)\n" : "this spool had joined no cluster\n");
    return 0;
  }
  if (command == "cluster status") {
    const Spool spool = Spool::open_existing(root);
    const Json st = cluster::status(spool);
    a.json ? out_json(st) : out(cluster_lines(st));
    return 0;
  }
  if (command == "enqueue") {
    if (a.wait) {
      bad_usage("--wait cannot be used with --cluster: the job runs on whichever host takes it");
    }
    // The input is checked before the spool is looked at (SPEC section 5).
    a.enq_checked = cmd::prepare_enqueue(
        a.enq, [] { return sys::read_all(STDIN_FILENO, "standard input"); }, false);
    const Spool spool = Spool::open_existing(root);
    out_ids(cluster::enqueue(spool, *a.enq_checked));
    return 0;
  }
  if (command == "show") {
    check_ids({a.id});
    const Spool spool = Spool::open_existing(root);
    out_json(cluster::show(spool, a.id));
    return 0;
  }
  if (command == "wait") {
    check_ids(a.ids);
    const Spool spool = Spool::open_existing(root);
    std::vector<std::string> unfinished;
    const int rc = cluster::wait(spool, a.ids, a.wait_timeout, &unfinished);
    if (rc == 124) {
      say_unfinished(*a.wait_timeout, unfinished);
    }
    return rc;
  }
  fail(fmt::format("'{}' is not a command of the cluster", command));
}

} // namespace
} // namespace queuectl::cli

int main(int argc, char** argv) {
  // `worker start` runs the intake as "queuectl-cluster --intake SPOOL" (not a command
  // of the CLI: its parent is the supervisor).
  if (argc == 3 && std::string_view(argv[1]) == "--intake") {
    const int rc = queuectl::cluster::run_intake(argv[2]);
    queuectl::cluster::close_library();
    return rc;
  }
  queuectl::cli::Helpers h = queuectl::cli::exec_helpers();
  h.cluster = queuectl::cli::run_cluster;
  const int rc = queuectl::cli::run(argc, argv, h);
  queuectl::cluster::close_library();
  return rc;
}
