// The self-attention block every decoder family shares: q/k/v projections (column-parallel),
// optional q/k/v biases (GLM-4 MoE: config.attention_bias; no o_proj bias), optional RMSNorm of q
// and k per head (Qwen3, GLM) or across all heads of the projection (MiniMax-M2,
// config.qk_norm_across_heads: with tp > 1 the ranks' q and k are all-gathered for the norm),
// RoPE from tables (partial rotary when the tables' rotary_dim < head_dim), KV store into the
// paged pool, paged causal GQA attention, and the output projection (row-parallel; the caller
// all-reduces).
#ifndef SPARKSTACK_RUNTIME_MODEL_ATTENTION_BLOCK_H_
#define SPARKSTACK_RUNTIME_MODEL_ATTENTION_BLOCK_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/arena.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/decoder_model.h"
#include "runtime/model/forward_batch.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_parallel.h"

namespace sparkstack {

class AttentionBlock final : public AttentionLayer {
 public:
  // Loads `prefix` + {q,k,v,o}_proj (and q_norm/k_norm when config.qk_norm, {q,k,v}_proj.bias
  // when config.attention_bias) for this rank's heads, e.g. prefix "model.layers.3.self_attn.".
  // `rope` is shared by the model's layers. `tp` is needed (and checked) only for norms across
  // heads at tp > 1, which also need whole kv heads per rank (InvalidArgument otherwise).
  static absl::StatusOr<std::unique_ptr<AttentionBlock>> Load(
      const Checkpoint& checkpoint, const std::string& prefix, const ModelConfig& config,
      const AttentionShard& shard, std::shared_ptr<const RopeTables> rope, Backend& backend,
      const TensorParallel& tp = {});

  absl::Status Forward(Backend& backend, const Tensor& x, const ForwardBatch& batch,
                       Tensor& k_cache, Tensor& v_cache, Arena& workspace,
                       Tensor& out) const override;
  int64_t WorkspaceBytes(int64_t tokens) const override;

 private:
  std::shared_ptr<const RopeTables> rope_;
  AttentionShard shard_;
  int64_t head_dim_ = 0;
  float eps_ = 0.0f;
  bool qk_norm_ = false;
  bool qk_norm_across_heads_ = false;
  TensorParallel tp_;
  Weight q_, k_, v_, o_;
  Tensor q_norm_, k_norm_;           // [head_dim], or [all heads * head_dim] across heads
  Tensor q_bias_, k_bias_, v_bias_;  // this rank's rows; attention_bias only

  // RMSNorm of x [T, local heads * head_dim] over all heads of all ranks (weight: every head).
  absl::Status NormAcrossHeads(Backend& backend, Tensor& x, const Tensor& weight,
                               Arena& workspace) const;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_ATTENTION_BLOCK_H_
