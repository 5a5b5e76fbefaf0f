// Where a node agent runs its worker rank (internal to runtime/control):
//   - in a child process (the default): `sparkstack node --worker-fd 3` calls RunWorkerRank and
//     talks to the agent over a socket pair with the session's own messages (the load plan,
//     bootstrap results and stop requests down; progress, bootstrap contributions and the final
//     report up), each framed as a 4-byte little-endian length and a serialized proto. A rank
//     that fails ends its process, which every peer sees at once (a failed rank in a living
//     process would leave its peers waiting on it); a rank that does not stop is killed; the GPU
//     memory it held goes with it.
//   - on a thread of the agent (tests with fake worker ranks): the WorkerRankFn is called there.
#ifndef SPARKSTACK_RUNTIME_CONTROL_WORKER_HOST_H_
#define SPARKSTACK_RUNTIME_CONTROL_WORKER_HOST_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/control/blob_exchange.h"
#include "runtime/control/control_types.h"
#include "runtime/control/worker_rank.h"

namespace sparkstack::control {

// What a running rank tells its agent. Called from the host's own threads.
struct WorkerEvents {
  std::function<void(const LoadProgress&)> progress;
  // The rank's part of bootstrap operation `seq`, to relay to the coordinator; a non-OK result
  // fails the operation.
  std::function<absl::Status(uint64_t seq, BootstrapOpKind kind, std::string_view blob)> contribute;
  // Exactly once, when the rank has ended: its result, and whether it had been asked to stop.
  std::function<void(const absl::Status& result, bool stopped)> ended;
};

class WorkerHost {
 public:
  virtual ~WorkerHost() = default;
  // The result of bootstrap operation `seq`, from the coordinator.
  virtual void Deliver(uint64_t seq, absl::StatusOr<std::vector<std::string>> result) = 0;
  // Asks the rank to stop; returns at once.
  virtual void Stop(const std::string& reason) = 0;
  // Waits up to `timeout` for the rank to end; true once `ended` has been called.
  virtual bool Wait(std::chrono::milliseconds timeout) = 0;
  // Ends a rank that did not stop when asked: kills the child process (then Wait succeeds), or
  // lets a thread go on alone (returns false: the process can only be restarted).
  virtual bool Abandon() = 0;
};

// `fn` on a thread of this process.
std::unique_ptr<WorkerHost> StartThreadWorker(const LoadPlan& plan, WorkerRankFn fn,
                                              WorkerEvents events);

// RunWorkerRank in a child process: `binary node --worker-fd 3`.
absl::StatusOr<std::unique_ptr<WorkerHost>> StartChildWorker(const LoadPlan& plan,
                                                             const std::string& binary,
                                                             WorkerEvents events);

// The child's side (`sparkstack node --worker-fd FD`): reads the load plan from `fd`, runs `fn`
// with a bootstrap relayed through `fd`, reports how it ended, and ends the process (status 0
// when the rank ended normally). When the agent goes away (end of file) the rank is told to stop,
// and the process exits after `orphan_grace` if it has not.
[[noreturn]] void RunWorkerProcess(
    int fd, const WorkerRankFn& fn,
    std::chrono::milliseconds orphan_grace = std::chrono::seconds(5));

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_WORKER_HOST_H_
