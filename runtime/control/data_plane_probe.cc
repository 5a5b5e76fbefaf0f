#include "runtime/control/data_plane_probe.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/parallel/host_communicator.h"

namespace sparkstack::control {
namespace {

absl::Status AllReduceAndCheck(Communicator& world, size_t count) {
  const int rank = world.rank();
  const int size = world.size();
  std::vector<float> data(count);
  for (size_t i = 0; i < count; ++i) data[i] = ProbeValue(rank, i);
  SPARKSTACK_RETURN_IF_ERROR(world.AllReduceSum(data.data(), count, DType::kF32));
  for (size_t i = 0; i < count; ++i) {
    float expected = 0;
    for (int r = 0; r < size; ++r) expected += ProbeValue(r, i);
    if (data[i] != expected) {
      return absl::DataLossError(absl::StrCat(
          "data-plane probe: all-reduce of ", count, " f32 over ", size, " ranks: element ", i,
          " is ", data[i], ", expected ", expected, " (rank ", rank, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

float ProbeValue(int rank, size_t i) {
  return static_cast<float>((rank + 1) * 1000 + static_cast<int>(i % 997));
}

absl::StatusOr<std::unique_ptr<Communicator>> ProbeDataPlane(Bootstrap& bootstrap) {
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<HostCommunicator> world,
                              HostCommunicator::Create(bootstrap));
  SPARKSTACK_RETURN_IF_ERROR(AllReduceAndCheck(*world, kProbeSmallCount));
  SPARKSTACK_RETURN_IF_ERROR(AllReduceAndCheck(*world, kProbeLargeCount));
  return std::unique_ptr<Communicator>(std::move(world));
}

absl::Status RunDataPlaneProbeWorker(const LoadPlan& plan, Bootstrap& bootstrap,
                                     WorkerContext& context) {
  context.Report({.phase = LoadPhase::kConnecting, .message = "building the host communicator"});
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> world, ProbeDataPlane(bootstrap));
  context.Report({.phase = LoadPhase::kReady,
                  .message = absl::StrCat("all-reduce of ", kProbeSmallCount, " and ",
                                          kProbeLargeCount, " f32 over ", world->size(),
                                          " ranks verified on rank ", plan.rank)});
  WaitForStop(context);
  return absl::OkStatus();
}

absl::Status DataPlaneProbeHead::Start(const LoadPlan& plan, Bootstrap& bootstrap,
                                       const std::atomic<bool>& cancel) {
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> world, ProbeDataPlane(bootstrap));
  std::lock_guard<std::mutex> lock(mu_);
  world_ = std::move(world);
  ++verified_;
  return absl::OkStatus();
}

void DataPlaneProbeHead::Stop(const absl::Status& why) {
  std::unique_ptr<Communicator> world;
  {
    std::lock_guard<std::mutex> lock(mu_);
    world = std::move(world_);
    last_stop_ = std::string(why.message());
  }
  // Destroyed outside the lock: the world communicator's destructor waits for its peers.
}

int DataPlaneProbeHead::verified_groups() const {
  std::lock_guard<std::mutex> lock(mu_);
  return verified_;
}

std::string DataPlaneProbeHead::last_stop_reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_stop_;
}

}  // namespace sparkstack::control
