#include "runtime/control/worker_rank.h"

#include <chrono>
#include <thread>

#include "runtime/control/data_plane_probe.h"
#include "runtime/control/engine_adapter.h"

namespace sparkstack::control {

absl::Status RunWorkerRank(const LoadPlan& plan, Bootstrap& bootstrap, WorkerContext& context) {
  switch (plan.kind) {
    case WorkerKind::kModel:
      return RunEngineWorkerRank(plan, bootstrap, context);
    case WorkerKind::kDataPlaneProbe:
      return RunDataPlaneProbeWorker(plan, bootstrap, context);
  }
  return absl::InvalidArgumentError("unknown worker kind");
}

void WaitForStop(const WorkerContext& context) {
  while (!context.stop().load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

}  // namespace sparkstack::control
