// Starts the other ranks of a local cluster as `sparkstack worker` child processes on loopback.
#ifndef SPARKSTACK_LAUNCHER_LOCAL_RANKS_H_
#define SPARKSTACK_LAUNCHER_LOCAL_RANKS_H_

#include <sys/types.h>

#include <chrono>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack::launcher {

// Runs ranks 1..world-1 as children of this process (this binary, `worker` subcommand), joining
// rank 0 at 127.0.0.1:port. Children die with the parent (PR_SET_PDEATHSIG).
absl::StatusOr<std::vector<pid_t>> SpawnLocalWorkers(int world_size, int port);

// Waits for the children to exit; an error names each rank that failed or did not exit within
// `timeout` (those are killed).
absl::Status WaitForWorkers(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout);

// Kills and reaps the children (after rank 0 failed).
void KillWorkers(const std::vector<pid_t>& pids);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_LOCAL_RANKS_H_
