// The engine (runtime/engine/engine.h) behind the control plane's seams: the worker rank a node
// agent hosts (WorkerRankFn) and rank 0 on the head (HeadRank). Both build their data plane from
// the control plane's Bootstrap: rank 0 broadcasts its resolved EngineOptions through it, every
// rank creates the UCX host communicator from it and splits its tensor-parallel group, as
// JoinCluster does over the TCP rendezvous.
//
// Readiness: a worker cannot say when it has loaded (RunWorker has no hook for it), but rank 0's
// Engine::Create returns only after every rank has loaded its shard and agreed the KV cache size
// (a collective), so the head's Start succeeding is the group's readiness; workers report
// kLoading and the coordinator counts them ready with rank 0 (CoordinatorOptions, kModel).
// Stopping: RunWorker returns when rank 0's engine stops (HeadRank::Stop destroys it) or a peer
// dies; it does not watch the agent's stop flag.
#ifndef SPARKSTACK_RUNTIME_CONTROL_ENGINE_ADAPTER_H_
#define SPARKSTACK_RUNTIME_CONTROL_ENGINE_ADAPTER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <shared_mutex>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "runtime/control/head_rank.h"
#include "runtime/control/worker_rank.h"
#include "runtime/engine/cluster_join.h"
#include "runtime/engine/engine.h"

namespace sparkstack::control {

// Forms one rank's data plane from `bootstrap`: rank 0 passes its resolved options, which every
// rank receives; then the world communicator and the rank's tensor-parallel group.
absl::StatusOr<JoinedRank> JoinOverBootstrap(Bootstrap& bootstrap, const EngineOptions* options);

// Worker side (plan.kind == kModel): joins, loads this rank's shard (from this node's
// plan.model_path) and executes rank 0's steps until rank 0 stops or fails.
absl::Status RunEngineWorkerRank(const LoadPlan& plan, Bootstrap& bootstrap,
                                 WorkerContext& context);

// Head side: rank 0 of the engine, created anew for every group the coordinator forms.
class EngineHeadRank final : public HeadRank {
 public:
  // `base`: the engine options other than what the load plan decides (model_dir, plan, threads
  // and kv_cache_bytes come from the plan).
  explicit EngineHeadRank(EngineOptions base);
  ~EngineHeadRank() override;

  absl::Status Start(const LoadPlan& plan, Bootstrap& bootstrap,
                     const std::atomic<bool>& cancel) override;
  // Destroys the engine: every request in flight ends (aborted), the workers are told to stop.
  void Stop(const absl::Status& why) override;

  // Runs `fn` with the current group's engine, or null while no group is formed. Stop waits for
  // `fn` to return, so keep it short (AddRequest, Abort, stats); never call it from an engine
  // output callback.
  void WithEngine(const std::function<void(Engine*)>& fn);

 private:
  EngineOptions base_;
  std::shared_mutex mu_;
  std::unique_ptr<Engine> engine_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_ENGINE_ADAPTER_H_
