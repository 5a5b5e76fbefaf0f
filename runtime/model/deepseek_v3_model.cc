// DeepSeek-V3 / R1 (and Kimi K2, which ships the same class): multi-head latent attention with a
// 576-wide latent cache (mla_attention.h) and sigmoid group-limited routing with a correction
// bias, a shared expert and first_k_dense_replace dense layers (moe_block.h). The
// multi-token-prediction layer (model.layers.61) is skipped.
#include <memory>

#include "runtime/core/status_macros.h"
#include "runtime/model/mla_attention.h"
#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadDeepseekV3Model(const ModelConfig& config,
                                                           const Checkpoint& checkpoint,
                                                           Backend& backend,
                                                           const ModelLoadOptions& options) {
  if (config.attention_bias) {
    return absl::UnimplementedError("attention_bias = true is not supported for DeepSeek-V3");
  }
  const TensorParallel tp = TensorParallelOf(options.shard);
  // MLA heads split like MHA heads (every head reads the one shared latent).
  SPARKSTACK_ASSIGN_OR_RETURN(AttentionShard heads,
                              ShardAttention(config.num_heads, config.num_heads, tp));
  MoeFamily family;
  family.kv_cache = {.kv_heads = 1,
                     .head_dim = MlaAttention::LatentWidth(config),
                     .v_head_dim = 0,
                     .dtype = DType::kF32};
  family.attention = [&](const std::string& prefix, std::shared_ptr<const RopeTables> rope)
      -> absl::StatusOr<std::unique_ptr<AttentionLayer>> {
    SPARKSTACK_ASSIGN_OR_RETURN(
        std::unique_ptr<MlaAttention> block,
        MlaAttention::Load(checkpoint, prefix, config, heads, std::move(rope), backend));
    return std::unique_ptr<AttentionLayer>(std::move(block));
  };
  return LoadMoeDecoder(config, checkpoint, backend, options, family);
}

}  // namespace sparkstack
