#include "runtime/engine/step_transport.h"

#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {
namespace {

// Runs `op` with the communicator's timeout set to `timeout`, then restores it.
template <typename Op>
absl::Status WithTimeout(Communicator& comm, std::chrono::milliseconds timeout, const Op& op) {
  const std::chrono::milliseconds saved = comm.timeout();
  comm.set_timeout(timeout);
  absl::Status status = op();
  comm.set_timeout(saved);
  return status;
}

}  // namespace

absl::Status BroadcastPlan(Communicator& world, const StepPlan& plan) {
  std::string payload = EncodeStepPlanPayload(plan);
  std::string header = EncodeStepPlanHeader(plan.kind, payload.size());
  SPARKSTACK_RETURN_IF_ERROR(world.Broadcast(header.data(), header.size(), 0));
  if (payload.empty()) return absl::OkStatus();
  return world.Broadcast(payload.data(), payload.size(), 0);
}

absl::StatusOr<StepPlan> ReceivePlan(Communicator& world, const StepPlanLimits& limits,
                                     std::chrono::milliseconds timeout) {
  std::string header(kStepPlanHeaderBytes, '\0');
  SPARKSTACK_RETURN_IF_ERROR(WithTimeout(
      world, timeout, [&] { return world.Broadcast(header.data(), header.size(), 0); }));
  StepKind kind;
  uint32_t payload_bytes = 0;
  SPARKSTACK_RETURN_IF_ERROR(DecodeStepPlanHeader(header, limits, kind, payload_bytes));
  std::string payload(payload_bytes, '\0');
  if (payload_bytes > 0) {
    SPARKSTACK_RETURN_IF_ERROR(world.Broadcast(payload.data(), payload.size(), 0));
  }
  return DecodeStepPlanPayload(kind, payload, limits);
}

absl::Status SendResult(Communicator& world, const StepResult& result, int to) {
  const std::string payload = EncodeStepResult(result);
  const auto size = static_cast<uint32_t>(payload.size());
  SPARKSTACK_RETURN_IF_ERROR(world.Send(&size, sizeof(size), to));
  return world.Send(payload.data(), payload.size(), to);
}

absl::StatusOr<StepResult> ReceiveResult(Communicator& world, int from, int64_t max_rows,
                                         int64_t vocab_size) {
  uint32_t size = 0;
  SPARKSTACK_RETURN_IF_ERROR(world.Recv(&size, sizeof(size), from));
  // Every row's sample plus, at most, every row's logits.
  const int64_t limit = 64 + max_rows * (32 + 8 * kMaxTopLogprobs + 16 + 4 * vocab_size);
  if (size > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("step result of ", size, " bytes from rank ", from, " exceeds ", limit));
  }
  std::string payload(size, '\0');
  SPARKSTACK_RETURN_IF_ERROR(world.Recv(payload.data(), payload.size(), from));
  return DecodeStepResult(payload, max_rows, vocab_size);
}

}  // namespace sparkstack
