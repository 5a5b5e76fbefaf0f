// ServeCluster: the cluster half of `sparkstack serve` — everything between the flags and a ready
// group: the control-plane credentials (a fresh token for local agents), the local node agents of
// --local-ranks, and the coordinator driving rank 0 (a HeadRank the caller owns) and the nodes.
// The API servers (runtime/serving) sit on top: they read Health() for /health and admission, and
// register an observer to end in-flight requests when the group fails and resume when it is
// re-formed.
#ifndef SPARKSTACK_RUNTIME_CONTROL_SERVE_CLUSTER_H_
#define SPARKSTACK_RUNTIME_CONTROL_SERVE_CLUSTER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/control/coordinator.h"
#include "runtime/control/head_rank.h"

namespace sparkstack::control {

struct ServeClusterOptions {
  WorkerKind kind = WorkerKind::kModel;
  std::string model_dir;       // on the head
  std::string node_model_dir;  // on the nodes ("" = model_dir)
  int tp = 1;
  int pp = 1;
  uint64_t kv_cache_bytes = 0;
  int threads = 0;
  std::string engine_options_json;
  // Where the other ranks run: remote agents (HOST:PORT each), or local agents started here.
  std::vector<std::string> nodes;
  bool local_ranks = false;
  AuthOptions auth;  // with local_ranks and no credentials: a fresh token only the children see
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{3000};
  std::chrono::milliseconds load_timeout{30 * 60 * 1000};
  std::string binary = "/proc/self/exe";  // for local agents
};

class ServeCluster {
 public:
  // Validates the options, starts local agents if asked, and forms the group (blocking until it
  // is ready); errors name the flag or the node at fault. `head` runs rank 0 and must outlive
  // the cluster. `prepare`, when given, runs with the coordinator before the first formation
  // (to add observers, or wire rank 0's failures and health to it).
  static absl::StatusOr<std::unique_ptr<ServeCluster>> Start(
      ServeClusterOptions options, HeadRank* head,
      const std::function<void(Coordinator&)>& prepare = nullptr);
  // Shutdown().
  ~ServeCluster();

  Coordinator& coordinator() { return *coordinator_; }

  // Drains and releases the nodes, stops rank 0 and any local agents. Idempotent.
  void Shutdown();

 private:
  ServeCluster() = default;
  std::string fresh_token_file_;
  std::unique_ptr<class LocalAgents> local_agents_;
  std::unique_ptr<Coordinator> coordinator_;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_SERVE_CLUSTER_H_
