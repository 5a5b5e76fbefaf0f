// GLM-4.5 / 4.6 / 4.7 (Glm4MoeForCausalLM; 4.5-Air without q/k norms): GQA with q/k/v biases,
// optional per-head q/k RMSNorm, rotate-half RoPE on the first half of each head
// (partial_rotary_factor 0.5); sigmoid routing with a correction bias and scaling, a shared expert
// and first_k_dense_replace dense layers. The multi-token-prediction layer is skipped.
#include <memory>

#include "runtime/core/status_macros.h"
#include "runtime/model/attention_block.h"
#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadGlm4MoeModel(const ModelConfig& config,
                                                        const Checkpoint& checkpoint,
                                                        Backend& backend,
                                                        const ModelLoadOptions& options) {
  const TensorParallel tp = TensorParallelOf(options.shard);
  SPARKSTACK_ASSIGN_OR_RETURN(AttentionShard heads,
                              ShardAttention(config.num_heads, config.num_kv_heads, tp));
  MoeFamily family;
  family.kv_cache = {.kv_heads = heads.kv_heads,
                     .head_dim = config.head_dim,
                     .v_head_dim = config.head_dim,
                     .dtype = DType::kF32};
  family.attention = [&](const std::string& prefix, std::shared_ptr<const RopeTables> rope)
      -> absl::StatusOr<std::unique_ptr<AttentionLayer>> {
    SPARKSTACK_ASSIGN_OR_RETURN(
        std::unique_ptr<AttentionBlock> block,
        AttentionBlock::Load(checkpoint, prefix, config, heads, std::move(rope), backend, tp));
    return std::unique_ptr<AttentionLayer>(std::move(block));
  };
  return LoadMoeDecoder(config, checkpoint, backend, options, family);
}

}  // namespace sparkstack
