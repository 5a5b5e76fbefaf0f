#include "runtime/control/engine_adapter.h"

#include <mutex>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"
#include "runtime/parallel/host_communicator.h"

namespace sparkstack::control {

absl::StatusOr<JoinedRank> JoinOverBootstrap(Bootstrap& bootstrap, const EngineOptions* options) {
  if ((bootstrap.rank() == 0) != (options != nullptr)) {
    return absl::InvalidArgumentError("rank 0, and only rank 0, describes the engine");
  }
  SPARKSTACK_ASSIGN_OR_RETURN(
      std::string text,
      bootstrap.Broadcast(options != nullptr ? EngineOptionsToJson(*options).dump() : ""));
  JoinedRank joined;
  SPARKSTACK_ASSIGN_OR_RETURN(joined.options, EngineOptionsFromJson(nlohmann::json::parse(
                                                  text, nullptr, /*allow_exceptions=*/false)));
  const ParallelPlan& plan = joined.options.plan;
  SPARKSTACK_RETURN_IF_ERROR(plan.ValidateWorld(bootstrap.world_size()));
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<HostCommunicator> world,
                              HostCommunicator::Create(bootstrap));
  SPARKSTACK_ASSIGN_OR_RETURN(joined.comms.tp_group, world->Split(plan.TpGroup(bootstrap.rank())));
  joined.comms.world = std::move(world);
  return joined;
}

absl::Status RunEngineWorkerRank(const LoadPlan& plan, Bootstrap& bootstrap,
                                 WorkerContext& context) {
  context.Report({.phase = LoadPhase::kConnecting,
                  .message = "receiving the engine options, connecting the data plane"});
  SPARKSTACK_ASSIGN_OR_RETURN(JoinedRank joined, JoinOverBootstrap(bootstrap, nullptr));
  // This node's copy of the model (the coordinator checked it has the same files).
  joined.options.model_dir = plan.model_path;
  context.Report({.phase = LoadPhase::kLoading,
                  .message = absl::StrCat("rank ", plan.rank,
                                          " loading its shard; ready together with rank 0")});
  return RunWorker(joined.options, std::move(joined.comms));
}

EngineHeadRank::EngineHeadRank(EngineOptions base) : base_(std::move(base)) {}

EngineHeadRank::~EngineHeadRank() { Stop(absl::CancelledError("rank 0 is being destroyed")); }

absl::Status EngineHeadRank::Start(const LoadPlan& plan, Bootstrap& bootstrap,
                                   const std::atomic<bool>& cancel) {
  EngineOptions options = base_;
  options.model_dir = plan.model_path;
  options.plan = {.tp = plan.tp, .pp = plan.pp};
  options.threads = plan.threads;
  options.kv_cache_bytes = static_cast<int64_t>(plan.kv_cache_bytes);
  SPARKSTACK_ASSIGN_OR_RETURN(options, ResolveEngineOptions(options));
  RankComms comms;
  if (plan.world_size > 1) {
    SPARKSTACK_ASSIGN_OR_RETURN(JoinedRank joined, JoinOverBootstrap(bootstrap, &options));
    comms = std::move(joined.comms);
  }
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                              Engine::Create(options, std::move(comms)));
  std::unique_lock<std::shared_mutex> lock(mu_);
  engine_ = std::move(engine);
  return absl::OkStatus();
}

void EngineHeadRank::Stop(const absl::Status& why) {
  std::unique_ptr<Engine> engine;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    engine = std::move(engine_);
  }
  // Destroyed outside the lock: its destructor aborts the requests (their callbacks run) and
  // stops the workers.
  engine.reset();
}

void EngineHeadRank::WithEngine(const std::function<void(Engine*)>& fn) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  fn(engine_.get());
}

}  // namespace sparkstack::control
