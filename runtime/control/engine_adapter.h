// The engine (runtime/engine/engine.h) behind the control plane's seams: the worker rank a node
// agent hosts (WorkerRankFn) and rank 0 on the head (HeadRank). Both build their data plane from
// the control plane's Bootstrap: rank 0 broadcasts its resolved EngineOptions through it, every
// rank creates the UCX host communicator from it and splits its tensor-parallel group, as
// JoinCluster does over the TCP rendezvous.
//
// Readiness: a worker cannot say when it has loaded (RunWorker has no hook for it), but rank 0's
// Engine::Create returns only after every rank has loaded its shard and agreed the KV cache size
// (a collective), so the head's Start succeeding is the group's readiness; workers report
// kLoading and the coordinator counts them ready with rank 0 (kModel plans).
// Stopping: RunWorker returns when rank 0's engine stops (EngineHeadRank::Stop destroys it) or a
// peer dies; it does not watch the agent's stop flag.
#ifndef SPARKSTACK_RUNTIME_CONTROL_ENGINE_ADAPTER_H_
#define SPARKSTACK_RUNTIME_CONTROL_ENGINE_ADAPTER_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>

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

// Head side: rank 0 of the engine, and the engine as the API servers see it for the whole life of
// `serve`. Every group the coordinator forms gets a new Engine (Start); a failed group's engine
// is destroyed (Stop), ending its requests with FinishReason::kError and the failure as their
// error. The request methods are those of serving::EngineProvider (runtime/serving), which
// forwards to them: request ids stay unique across groups, an Abort for a request of an earlier
// group is ignored, health() says why nothing can be served while the group is down.
class EngineHeadRank final : public HeadRank {
 public:
  // Resolves `options` (tp, pp, threads, KV budget and the rest, as every group will use them)
  // and loads the model's config and tokenizer, which stay fixed across groups.
  static absl::StatusOr<std::unique_ptr<EngineHeadRank>> Create(EngineOptions options);
  ~EngineHeadRank() override;

  // HeadRank. The plan's tp and pp must be the options'.
  absl::Status Start(const LoadPlan& plan, Bootstrap& bootstrap,
                     const std::atomic<bool>& cancel) override;
  void Stop(const absl::Status& why) override;

  // Called once per group (on a watcher thread) when its engine fails on its own (its health
  // turns non-OK), e.g. with Coordinator::ReportHeadFailure. Set before the first Start.
  void SetFailureCallback(std::function<void(const absl::Status&)> on_failure);
  // When set, health() is also not OK while this says so (e.g. the coordinator is degraded,
  // naming the node), before and after this head's own view.
  void SetHealthSource(std::function<absl::Status()> source);

  // As Engine::AddRequest on the current group's engine; Unavailable with the reason while there
  // is none. Thread-safe; `on_output` runs on the engine core thread and must not block.
  absl::StatusOr<RequestId> AddRequest(Request request, Engine::OutputCallback on_output);
  void Abort(RequestId id);
  EngineStats stats() const;  // the current group's (zeros while there is none)
  absl::Status health() const;
  const ModelConfig& model_config() const { return config_; }
  const EngineOptions& options() const { return options_; }
  const tokenizer::Tokenizer* tokenizer() const { return tokenizer_.get(); }

  struct Group;  // one formation's engine

 private:
  EngineHeadRank() = default;
  void Watch(std::shared_ptr<Group> group);

  EngineOptions options_;
  ModelConfig config_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::function<void(const absl::Status&)> on_failure_;
  std::function<absl::Status()> health_source_;

  mutable std::shared_mutex mu_;
  std::shared_ptr<Group> group_ ABSL_GUARDED_BY(mu_);
  uint64_t generations_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status down_ ABSL_GUARDED_BY(mu_) = absl::UnavailableError("the cluster is forming");
  std::thread watcher_;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_ENGINE_ADAPTER_H_
