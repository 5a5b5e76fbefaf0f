#include "runtime/engine/cluster_join.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"
#include "runtime/parallel/host_communicator.h"

namespace sparkstack {

absl::StatusOr<JoinedRank> JoinCluster(const RendezvousOptions& rendezvous,
                                       const EngineOptions* options,
                                       RendezvousListener* listener) {
  if ((rendezvous.rank == 0) != (options != nullptr)) {
    return absl::InvalidArgumentError("rank 0, and only rank 0, describes the engine");
  }
  SPARKSTACK_ASSIGN_OR_RETURN(auto group, Rendezvous::Join(rendezvous, listener));
  SPARKSTACK_ASSIGN_OR_RETURN(
      std::string text, group->Broadcast(options ? EngineOptionsToJson(*options).dump() : ""));
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  JoinedRank joined;
  SPARKSTACK_ASSIGN_OR_RETURN(joined.options, EngineOptionsFromJson(json));
  const ParallelPlan& plan = joined.options.plan;
  SPARKSTACK_RETURN_IF_ERROR(plan.ValidateWorld(rendezvous.world_size));
  SPARKSTACK_ASSIGN_OR_RETURN(auto world, HostCommunicator::Create(*group));
  SPARKSTACK_ASSIGN_OR_RETURN(joined.comms.tp_group, world->Split(plan.TpGroup(rendezvous.rank)));
  joined.comms.world = std::move(world);
  return joined;
}

}  // namespace sparkstack
