// ServeStack: what `sparkstack serve` runs, as one object that `serve` (until a signal) and `demo`
// (for one chat and a benchmark) both start: rank 0 in this process (the engine, or the
// data-plane probe), the cluster around it (control::ServeCluster: local or remote node agents and
// the coordinator) and, for a model, the API servers (runtime/serving) in front of the engine.
#ifndef SPARKSTACK_LAUNCHER_SERVE_STACK_H_
#define SPARKSTACK_LAUNCHER_SERVE_STACK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/control/engine_adapter.h"
#include "runtime/control/serve_cluster.h"
#include "runtime/engine/engine.h"
#include "runtime/serving/engine_provider.h"
#include "runtime/serving/server.h"
#include "runtime/serving/serving_options.h"

namespace sparkstack::launcher {

struct ServeStackOptions {
  // cluster.kind kDataPlaneProbe forms the group around a data-plane check: no engine and no API
  // servers (`engine` and `api` are then unused).
  control::ServeClusterOptions cluster;
  EngineOptions engine;  // rank 0's, as the flags give them (EngineOptionsFromFlags)
  serving::ServingOptions api;
  std::string log_prefix = "sparkstack serve";  // starts the progress lines printed to stderr
};

class ServeStack {
 public:
  // Loads rank 0, forms the group (blocking until it is ready or failed) and starts the API
  // servers. Errors come from EngineHeadRank::Create, ServeCluster::Start and StartApiServer
  // (each names the flag, node or address at fault); nothing is left running after an error.
  static absl::StatusOr<std::unique_ptr<ServeStack>> Start(ServeStackOptions options);
  // Shutdown().
  ~ServeStack();

  // The API servers' bound ports; -1 without them (a probe, or no gRPC server).
  int http_port() const;
  int grpc_port() const;
  // The engine's head (rank 0), or nullptr for a probe.
  const control::EngineHeadRank* engine() const { return engine_head_; }

  // Stops the API servers first (their in-flight requests end), then the cluster (nodes drained
  // and released, local agents stopped). Idempotent; call from the thread that started it.
  void Shutdown();

 private:
  ServeStack() = default;

  // Destroyed in reverse: the API servers before the provider, the cluster before rank 0.
  std::unique_ptr<control::HeadRank> head_;
  control::EngineHeadRank* engine_head_ = nullptr;  // head_ when it runs the engine
  std::unique_ptr<control::ServeCluster> cluster_;
  std::unique_ptr<serving::EngineProvider> provider_;
  std::unique_ptr<serving::ApiServer> api_;
};

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_SERVE_STACK_H_
