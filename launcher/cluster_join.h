// Forming a tp x pp world over the TCP rendezvous (until the gRPC control plane takes over):
// rank 0 sends every rank the resolved EngineOptions, then every rank connects the UCX data
// plane and splits its tensor-parallel group. Shared by `generate` (rank 0) and `worker`.
#ifndef SPARKSTACK_LAUNCHER_CLUSTER_JOIN_H_
#define SPARKSTACK_LAUNCHER_CLUSTER_JOIN_H_

#include <string>

#include "absl/status/statusor.h"
#include "runtime/engine/engine.h"
#include "runtime/parallel/rendezvous.h"

namespace sparkstack::launcher {

struct JoinedRank {
  EngineOptions options;  // rank 0's, on every rank
  RankComms comms;
};

// Rank 0 passes its resolved options (and may pass a pre-bound listener); other ranks pass null
// and receive them.
absl::StatusOr<JoinedRank> JoinCluster(const RendezvousOptions& rendezvous,
                                       const EngineOptions* options,
                                       RendezvousListener* listener = nullptr);

// A worker's failure, written by `worker --report-fd` and read by its parent: the status code
// and message on one line. Workers of a local cluster report here instead of printing, so that
// rank 0 tells the user once.
std::string EncodeFailureReport(const absl::Status& status);
absl::Status DecodeFailureReport(const std::string& line);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_CLUSTER_JOIN_H_
