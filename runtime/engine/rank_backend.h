// The backend one rank runs its shard on (EngineOptions::backend), built before the model loads:
//   cpu   the CPU backend with options.threads workers.
//   cuda  after the start-up checks, on a probe backend that is then released: every selected
//         kernel against the CPU backend and the whole-model logits of a tiny probe model of the
//         served architecture (dense and NVFP4) against the CPU backend, refusing to serve on a
//         mismatch with the kernel or probe named; the kernel configuration of this device and
//         model width, from the disk cache or a short timed sweep that fills it. Then the memory
//         plan (memory_plan.h: weights estimated from the checkpoint, workspace, scratch, step
//         buffers, KV) and the backend with one arena of exactly the plan.
#ifndef SPARKSTACK_RUNTIME_ENGINE_RANK_BACKEND_H_
#define SPARKSTACK_RUNTIME_ENGINE_RANK_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/engine/engine.h"
#include "runtime/model/model.h"

namespace sparkstack {

struct RankBackend {
  std::unique_ptr<Backend> backend;
  // CUDA: the plan's KV blocks (the arena holds exactly them once the model and buffers are
  // allocated); 0 for the CPU backend, whose KV budget the runner computes itself.
  int64_t planned_kv_blocks = 0;
  std::string summary;  // what was chosen, for the log
};

// `shard` says which layers and which tensor-parallel part this rank loads (tp_comm unused).
absl::StatusOr<RankBackend> CreateRankBackend(const EngineOptions& options,
                                              const ModelConfig& config, const ModelShard& shard);

// Bytes of the checkpoint tensors `shard` loads onto its device: whole tensors of its layers,
// the embedding (first stage) and head (last stage), divided by tp for the tensor-parallel
// matrices; an upper bound of what the backend stores for them.
absl::StatusOr<int64_t> EstimateShardWeightBytes(const std::string& model_dir,
                                                 const ModelConfig& config,
                                                 const ModelShard& shard);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_RANK_BACKEND_H_
