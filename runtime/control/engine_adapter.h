// The engine behind the control plane's seams: the worker rank a node agent hosts
// (WorkerRankFn) and rank 0 on the head (HeadRank).
//
// INTERIM ADAPTER — to be switched to the engine API of issue 9 when it lands in main:
//   rank 0:    Engine created from (model dir, parallel plan, engine options, Bootstrap&)
//   ranks > 0: RunWorkerRank(const WorkerJob&, Bootstrap&, const std::atomic<bool>& stop)
// Both will take the control plane's Bootstrap directly. Until then this file hosts today's
// ClusterRank, which still joins its own TCP rendezvous: rank 0 binds an ephemeral port and
// broadcasts it over the gRPC bootstrap, and every worker joins it at the head's address as its
// agent saw it. Known limits of the interim path: ClusterRank::Follow does not watch `stop` (it
// returns when rank 0 sends Stop or its communicator times out), and its followers give up after
// 10 s without a step; so while idle, rank 0 runs a one-token prefill every few seconds to keep
// them following.
#ifndef SPARKSTACK_RUNTIME_CONTROL_ENGINE_ADAPTER_H_
#define SPARKSTACK_RUNTIME_CONTROL_ENGINE_ADAPTER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "runtime/control/head_rank.h"
#include "runtime/control/worker_rank.h"
#include "runtime/engine/generation.h"

namespace sparkstack {
class ClusterRank;
}

namespace sparkstack::control {

// Worker side (plan.kind == kModel): loads the rank's shard and follows rank 0.
absl::Status RunEngineWorkerRank(const LoadPlan& plan, Bootstrap& bootstrap,
                                 WorkerContext& context);

// Head side: rank 0 of the engine.
class EngineHeadRank final : public HeadRank {
 public:
  EngineHeadRank();
  ~EngineHeadRank() override;

  absl::Status Start(const LoadPlan& plan, Bootstrap& bootstrap,
                     const std::atomic<bool>& cancel) override;
  void Stop(const absl::Status& why) override;

  // Generates with every rank of the current group taking part (ClusterRank::Generate).
  // Unavailable while no group is formed. Serialised with Start/Stop.
  absl::StatusOr<std::vector<GenerationResult>> Generate(
      std::span<const std::vector<int32_t>> prompts, const GenerationOptions& options);

 private:
  void KeepFollowersAlive();

  std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<ClusterRank> rank_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_step_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread keepalive_;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_ENGINE_ADAPTER_H_
