// Moving StepPlans (rank 0 -> every rank, a broadcast on the world communicator) and StepResults
// (sampling rank -> rank 0, point to point) over the data plane, with their framing.
#ifndef SPARKSTACK_RUNTIME_ENGINE_STEP_TRANSPORT_H_
#define SPARKSTACK_RUNTIME_ENGINE_STEP_TRANSPORT_H_

#include <chrono>
#include <cstdint>

#include "absl/status/statusor.h"
#include "runtime/engine/step_plan.h"
#include "runtime/engine/step_result.h"
#include "runtime/parallel/communicator.h"

namespace sparkstack {

// Rank 0: sends `plan` to every other rank.
absl::Status BroadcastPlan(Communicator& world, const StepPlan& plan);
// Ranks > 0: waits for rank 0's next plan for up to `timeout` (a dead rank 0 is still noticed
// at once: the communicator watches its peers while it waits).
absl::StatusOr<StepPlan> ReceivePlan(Communicator& world, const StepPlanLimits& limits,
                                     std::chrono::milliseconds timeout);

absl::Status SendResult(Communicator& world, const StepResult& result, int to);
absl::StatusOr<StepResult> ReceiveResult(Communicator& world, int from, int64_t max_rows,
                                         int64_t vocab_size);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_STEP_TRANSPORT_H_
