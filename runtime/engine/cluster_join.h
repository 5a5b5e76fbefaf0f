// Forming a tp x pp world over the TCP rendezvous (until the gRPC control plane takes over):
// rank 0 sends every rank the resolved EngineOptions, then every rank connects the UCX data
// plane and splits its tensor-parallel group. Used by `generate`/`bench` (rank 0), `worker` and
// the cluster tests.
#ifndef SPARKSTACK_RUNTIME_ENGINE_CLUSTER_JOIN_H_
#define SPARKSTACK_RUNTIME_ENGINE_CLUSTER_JOIN_H_

#include <string>

#include "absl/status/statusor.h"
#include "runtime/engine/engine.h"
#include "runtime/parallel/rendezvous.h"

namespace sparkstack {

struct JoinedRank {
  EngineOptions options;  // rank 0's, on every rank
  RankComms comms;
};

// Rank 0 passes its resolved options (and may pass a pre-bound listener); other ranks pass null
// and receive them.
absl::StatusOr<JoinedRank> JoinCluster(const RendezvousOptions& rendezvous,
                                       const EngineOptions* options,
                                       RendezvousListener* listener = nullptr);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_CLUSTER_JOIN_H_
