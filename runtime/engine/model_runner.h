// ModelRunner: one rank's executor of engine steps. It owns the rank's backend, model shard, KV
// pools, workspace and the device buffers of the ForwardBatch, all sized at load for the largest
// step (EngineOptions), so executing a step allocates nothing on the device.
//
// A step on one rank: apply the plan to the BatchState, upload the batch's host arrays, receive
// the hidden states from the previous stage (or embed), run the shard, send the hidden states to
// the next stage; the sampling rank (tp rank 0 of the last stage) samples and fills a StepResult.
// Only the engine core thread (rank 0) or the worker loop calls it.
#ifndef SPARKSTACK_RUNTIME_ENGINE_MODEL_RUNNER_H_
#define SPARKSTACK_RUNTIME_ENGINE_MODEL_RUNNER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/arena.h"
#include "runtime/engine/batch_state.h"
#include "runtime/engine/decode_graphs.h"
#include "runtime/engine/device_comms.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/step_plan.h"
#include "runtime/engine/step_result.h"
#include "runtime/model/model.h"
#include "runtime/parallel/communicator.h"
#include "runtime/parallel/parallel_plan.h"

namespace sparkstack {

// CPU time this thread has used, in microseconds.
int64_t ThreadCpuMicros();

class ModelRunner {
 public:
  // Loads this rank's shard of options.model_dir (options already resolved: max_model_len set).
  // `comms` must match options.plan (null members for a world of one).
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Create(const EngineOptions& options,
                                                             RankComms& comms);

  // KV blocks this rank can hold within its budget (options.kv_cache_bytes, or the fraction of
  // the memory left), capped at what max_num_seqs sequences of max_model_len tokens can use.
  int64_t AffordableKvBlocks() const;
  // Allocates the pools (every rank the same count, agreed through the world communicator).
  absl::Status AllocateKvCache(int64_t num_blocks);

  // Runs this rank's part of the step; on the sampling rank fills `result` (null elsewhere).
  absl::Status Execute(const StepPlan& plan, StepResult* result);

  bool is_sampler() const { return is_sampler_; }
  // Microseconds the last Execute spent in the model and the sampler (not in plan handling,
  // batch building or communication).
  int64_t last_compute_us() const { return last_compute_us_; }
  // The same in this thread's CPU time.
  int64_t last_compute_cpu_us() const { return last_compute_cpu_us_; }
  int sampler_rank() const { return plan_.RankOf(plan_.pp - 1, 0); }
  const Model& model() const { return *model_; }
  const StepPlanLimits& plan_limits() const { return plan_limits_; }
  int64_t num_blocks() const { return cache_.num_blocks; }

 private:
  ModelRunner() = default;
  absl::Status Upload(const HostBatch& host, ForwardBatch& batch);
  absl::Status SampleStep(const HostBatch& host, const Tensor& logits, StepResult& result);

  EngineOptions options_;
  ParallelPlan plan_;
  int rank_ = 0;
  bool is_sampler_ = false;
  Communicator* world_ = nullptr;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  KvCache cache_;
  Arena workspace_;
  StepPlanLimits plan_limits_;
  int64_t max_blocks_per_seq_ = 0;
  int64_t vocab_limit_ = 0;
  BatchState state_{{}};
  HostBatch host_;
  std::vector<SampledToken> samples_;
  int64_t last_compute_us_ = 0;
  int64_t last_compute_cpu_us_ = 0;
  int64_t planned_kv_blocks_ = 0;  // CUDA: the KV blocks the memory plan sized the arena for
  std::unique_ptr<DeviceComms> device_comms_;  // NCCL on the compute stream (CUDA, world > 1)
  Communicator* data_world_ = nullptr;         // stage hand-offs: device_comms_ or world_
  std::unique_ptr<DecodeGraphs> graphs_;       // decode steps per batch-size bucket

  // Device buffers, sized for the largest step; each step uses prefixes of them.
  Tensor token_ids_, positions_, slot_mapping_, query_start_, seq_lens_, block_table_;
  Tensor logits_rows_, hidden_, logits_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_MODEL_RUNNER_H_
