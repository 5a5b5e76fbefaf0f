// Hosting a worker rank: the seam between the control plane and whatever a rank runs. A node
// agent calls a WorkerRankFn on its own thread when the coordinator sends the load plan; the
// function builds its communicators from the bootstrap it is given (relayed over gRPC through the
// coordinator), reports its load phases, and returns when told to stop or when it fails.
//
// The engine's worker rank is one such function (engine_adapter.h); the data-plane probe is
// another (data_plane_probe.h); tests pass their own.
#ifndef SPARKSTACK_RUNTIME_CONTROL_WORKER_RANK_H_
#define SPARKSTACK_RUNTIME_CONTROL_WORKER_RANK_H_

#include <atomic>
#include <functional>

#include "absl/status/status.h"
#include "runtime/control/control_types.h"
#include "runtime/parallel/bootstrap.h"

namespace sparkstack::control {

// What the host gives a worker rank besides its plan and bootstrap. Thread-safe.
class WorkerContext {
 public:
  virtual ~WorkerContext() = default;
  // Streams a load phase to the coordinator. Report kReady exactly once, when the rank is loaded
  // and connected: the group is ready when rank 0 and every node have said so.
  virtual void Report(const LoadProgress& progress) = 0;
  // Becomes true when the rank must return: the coordinator stopped or drained it, its session
  // ended (the group failed), or the agent shuts down. Bootstrap calls fail from then on too.
  virtual const std::atomic<bool>& stop() const = 0;
};

// Runs worker rank plan.rank (>= 1) until stop() or a failure. Returns OK when it stopped because
// it was asked to (or rank 0 ended the group normally), otherwise the error, whose message the
// coordinator reports (e.g. "peer rank 2 unavailable").
using WorkerRankFn =
    std::function<absl::Status(const LoadPlan& plan, Bootstrap& bootstrap, WorkerContext& context)>;

// The default worker: dispatches on plan.kind to the engine's worker rank or the data-plane probe.
absl::Status RunWorkerRank(const LoadPlan& plan, Bootstrap& bootstrap, WorkerContext& context);

// Blocks until context.stop() becomes true (checked every 20 ms).
void WaitForStop(const WorkerContext& context);

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_WORKER_RANK_H_
