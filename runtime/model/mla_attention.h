// Multi-head latent attention (DeepSeek-V2/V3, Kimi K2) in its absorbed form (DeepSeek's own
// inference code and llama.cpp compute it this way): the KV cache holds one latent row per token
// and layer, [k_pe (qk_rope_head_dim, roped) | c_kv (kv_lora_rank, normed)] -- 64 + 512 = 576
// values for DeepSeek-V3 -- and attention is multi-query over those rows:
//   q_h        = [q_nope_h | q_pe_h]            from q_b(RMSNorm(q_a x)) (or q_proj x)
//   q~_h       = W_kb,h^T q_nope_h              (kv_lora_rank wide; W_kb,h: head h's key rows of
//                                                kv_b_proj, [qk_nope, kv_lora_rank])
//   score(h,s) = (q_pe_h · k_pe(s) + q~_h · c_kv(s)) * scale,   scale = MlaSoftmaxScale
//   (moe_rope.h) o_h        = W_vb,h (sum_s p(h,s) c_kv(s))  (W_vb,h: head h's value rows of
//   kv_b_proj) out        = o_proj concat_h(o_h)
// which equals the plain form (k_nope_h = W_kb,h c_kv, v_h = W_vb,h c_kv per position) exactly in
// real arithmetic. RoPE turns the first qk_rope dims of q~'s row and of the latent row with the
// model's (interleaved, YaRN) tables. Prefill uses the same form (simpler; costlier per position
// than expanding keys and values, which only a long prefill would notice).
//
// Tensor parallelism: heads are split over the ranks (q_b / q_proj rows, kv_b_proj rows, o_proj
// columns); the latent (q_a, kv_a and their norms) is computed, and cached, on every rank. The
// transposed key blocks W_kb,h^T are kept dense: bf16 when the checkpoint is bf16 (exact), f32
// otherwise (exact dequantization of NVFP4/FP8); W_vb,h are row slices of kv_b_proj as loaded.
#ifndef SPARKSTACK_RUNTIME_MODEL_MLA_ATTENTION_H_
#define SPARKSTACK_RUNTIME_MODEL_MLA_ATTENTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/arena.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/decoder_model.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_parallel.h"

namespace sparkstack {

class MlaAttention final : public AttentionLayer {
 public:
  // Loads prefix + {q_a_proj, q_a_layernorm, q_b_proj | q_proj, kv_a_proj_with_mqa,
  // kv_a_layernorm, kv_b_proj, o_proj} ("model.layers.3.self_attn.") for this rank's heads.
  static absl::StatusOr<std::unique_ptr<MlaAttention>> Load(
      const Checkpoint& checkpoint, const std::string& prefix, const ModelConfig& config,
      const AttentionShard& shard, std::shared_ptr<const RopeTables> rope, Backend& backend);

  // The latent row width (the KV pool's head_dim with one kv head and no value pool).
  static int64_t LatentWidth(const ModelConfig& config) {
    return config.mla.qk_rope_head_dim + config.mla.kv_lora_rank;
  }

  absl::Status Forward(Backend& backend, const Tensor& x, const ForwardBatch& batch,
                       Tensor& k_cache, Tensor& v_cache, Arena& workspace,
                       Tensor& out) const override;
  int64_t WorkspaceBytes(int64_t tokens) const override;

 private:
  std::shared_ptr<const RopeTables> rope_;
  MlaConfig mla_;
  int64_t heads_ = 0;  // local
  float eps_ = 0.0f;
  float scale_ = 0.0f;
  Weight q_a_, q_b_, q_;  // q_a_/q_b_ with q-LoRA, q_ without
  Tensor q_a_norm_;
  Weight kv_a_;
  Tensor kv_a_norm_;
  std::vector<Weight> k_absorb_;  // per local head W_kb,h^T [kv_lora, qk_nope]
  std::vector<Weight> v_absorb_;  // per local head W_vb,h [v_head_dim, kv_lora]
  Weight o_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_MLA_ATTENTION_H_
