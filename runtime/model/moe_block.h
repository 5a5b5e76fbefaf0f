// The mixture-of-experts feed-forward block the MoE families share (FfnLayer): router, top-k,
// the routed experts this rank holds, and the shared expert of DeepSeek/GLM:
//   y = sum over the token's top-k experts of w * down_e(silu(gate_e x) * up_e x) + shared(x)
// (routing rule in kernels/cpu/moe_router.h; config fields in model_config.h MoeConfig).
//
// Parallelism inside a pipeline stage of tp ranks with ep expert-parallel groups (ep divides
// tp; the default ep = tp): group g = rank / (tp / ep) holds the experts BalancedSplit(E, ep, g)
// whole or, when tp / ep > 1, each of its experts' width split over the tp / ep ranks of the group
// (BalancedSplit; NVFP4 widths must keep 16-element blocks for the down projection). The shared
// expert is tensor-parallel like a dense MLP. Every rank's output is a partial sum, completed by
// the decoder's post-FFN all-reduce: expert parallelism adds no collective.
//
// Checkpoint names, for layer prefix P ("model.layers.3."):
//   Qwen3-MoE   P mlp.gate.weight, P mlp.experts.E.{gate,up,down}_proj
//   DeepSeek-V3, GLM-4 MoE  + P mlp.gate.e_score_correction_bias, P mlp.shared_experts.*
//   MiniMax-M2  P block_sparse_moe.gate.weight, P block_sparse_moe.e_score_correction_bias,
//               P block_sparse_moe.experts.E.{w1,w3,w2} (gate, up, down)
// Each expert linear may be dense, ModelOpt NVFP4 or compressed-tensors NVFP4 (per-expert scales)
// or DeepSeek FP8 (converted to NVFP4); see runtime/quant/weight_loader.h.
#ifndef SPARKSTACK_RUNTIME_MODEL_MOE_BLOCK_H_
#define SPARKSTACK_RUNTIME_MODEL_MOE_BLOCK_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/arena.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/decoder_model.h"
#include "runtime/model/model_config.h"
#include "runtime/model/sharding.h"
#include "runtime/model/tensor_parallel.h"

namespace sparkstack {

// Which routed experts, and which part of each expert's width, one rank holds.
struct ExpertShard {
  Range experts;   // global expert ids
  int slices = 1;  // tp / ep: ranks sharing each expert
  int slice = 0;   // this rank's part of every expert's width
};

// The shard of tensor-parallel rank tp.rank when ep groups split the experts. InvalidArgument
// when ep is not a positive divisor of tp.size.
absl::StatusOr<ExpertShard> ShardExperts(int64_t num_experts, const TensorParallel& tp, int ep);

class MoeBlock final : public FfnLayer {
 public:
  // Loads layer `layer_prefix`'s router and this rank's experts (and shared expert). `backend`
  // must outlive the block.
  static absl::StatusOr<std::unique_ptr<MoeBlock>> Load(const Checkpoint& checkpoint,
                                                        const std::string& layer_prefix,
                                                        const ModelConfig& config,
                                                        const TensorParallel& tp, int ep,
                                                        Backend& backend);

  absl::Status Forward(Backend& backend, const Tensor& x, Arena& workspace,
                       Tensor& out) const override;
  int64_t WorkspaceBytes(int64_t tokens) const override;

  const ExpertSet& experts() const { return experts_; }

 private:
  Backend* backend_ = nullptr;
  MoeRouting routing_;
  Weight router_;  // [E, hidden], replicated
  Tensor bias_;    // f32 [E] or undefined
  ExpertSet experts_;
  std::unique_ptr<FfnLayer> shared_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_MOE_BLOCK_H_
