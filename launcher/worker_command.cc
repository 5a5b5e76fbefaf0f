// `sparkstack worker`: one rank of a cluster started elsewhere (another machine, a network
// namespace, or `generate --local-ranks`). Rank 0 tells it which model and engine options to run.
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/engine/cluster_join.h"
#include "launcher/command_registry.h"
#include "launcher/local_ranks.h"
#include "launcher/rendezvous_address.h"
#include "runtime/core/status_macros.h"

namespace sparkstack::launcher {
namespace {

struct WorkerFlags {
  int rank = 0;
  int world = 0;
  std::string rendezvous;
  int timeout_s = 60;
  int report_fd = -1;
};

absl::Status Run(const WorkerFlags& f) {
  if (f.rank < 1 || f.rank >= f.world) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rank ", f.rank, " must be in [1, --world ", f.world, ") (rank 0 drives)"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(RendezvousOptions options,
                              ParseRendezvous(f.rendezvous, f.rank, f.world, f.timeout_s));
  SPARKSTACK_ASSIGN_OR_RETURN(JoinedRank joined, JoinCluster(options, nullptr));
  return RunWorker(joined.options, std::move(joined.comms));
}

void SetupWorkerCommand(CLI::App& root) {
  auto flags = std::make_shared<WorkerFlags>();
  CLI::App* cmd = root.add_subcommand("worker", "Join a cluster as one rank");
  cmd->add_option("--rank", flags->rank, "this process's rank (1..world-1)")->required();
  cmd->add_option("--world", flags->world, "number of ranks (tp x pp)")->required();
  cmd->add_option("--rendezvous", flags->rendezvous, "rank 0's HOST:PORT")->required();
  cmd->add_option("--timeout", flags->timeout_s, "seconds to wait for the other ranks");
  cmd->add_option("--report-fd", flags->report_fd,
                  "write a failure to this file descriptor instead of stderr (local clusters: "
                  "rank 0 reports it once)");
  cmd->callback([flags] {
    const absl::Status status = Run(*flags);
    if (!status.ok() && flags->report_fd >= 0) {
      const std::string report = EncodeFailureReport(status);
      (void)!write(flags->report_fd, report.data(), report.size());
      throw CLI::RuntimeError(1);
    }
    FinishCommand(status);
  });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupWorkerCommand);

}  // namespace sparkstack::launcher
