// Starts the other ranks of a local cluster as `sparkstack worker` child processes on loopback.
#ifndef SPARKSTACK_LAUNCHER_LOCAL_RANKS_H_
#define SPARKSTACK_LAUNCHER_LOCAL_RANKS_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack::launcher {

struct LocalWorker {
  int rank = 0;
  pid_t pid = -1;
  int report_fd = -1;  // read end of the pipe the worker writes its failure to
};

// Runs ranks 1..world-1 as children of this process (this binary, `worker` subcommand), joining
// rank 0 at 127.0.0.1:port. Children die with the parent (PR_SET_PDEATHSIG) and report a failure
// through a pipe instead of printing it.
absl::StatusOr<std::vector<LocalWorker>> SpawnLocalWorkers(int world_size, int port);

// Waits for the children to exit; an error names each rank that failed or did not exit within
// `timeout` (those are killed). Closes the report pipes and empties `workers`.
absl::Status WaitForWorkers(std::vector<LocalWorker>& workers, std::chrono::milliseconds timeout);

// Kills and reaps the children (after rank 0 failed), closing the report pipes; empties
// `workers`.
void KillWorkers(std::vector<LocalWorker>& workers);

// A worker's failure, written by `worker --report-fd` and read by its parent: the status code
// and message on one line. Workers of a local cluster report here instead of printing, so that
// rank 0 tells the user once.
std::string EncodeFailureReport(const absl::Status& status);
absl::Status DecodeFailureReport(const std::string& line);

// The root cause among the workers' reports, waiting up to `wait` for them: a failure that is not
// only a reaction to another rank's death (Unavailable, DeadlineExceeded) when there is one.
std::optional<absl::Status> WorkerFailure(const std::vector<LocalWorker>& workers,
                                          std::chrono::milliseconds wait);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_LOCAL_RANKS_H_
