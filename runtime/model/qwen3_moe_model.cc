// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3's attention (per-head q/k RMSNorm, rotate-half
// RoPE over the whole head, GQA) and softmax top-k routing in every layer except mlp_only_layers
// and those decoder_sparse_step skips.
#include <memory>

#include "runtime/core/status_macros.h"
#include "runtime/model/attention_block.h"
#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadQwen3MoeModel(const ModelConfig& config,
                                                         const Checkpoint& checkpoint,
                                                         Backend& backend,
                                                         const ModelLoadOptions& options) {
  if (config.attention_bias) {
    return absl::UnimplementedError("attention_bias = true is not supported for Qwen3-MoE");
  }
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
        AttentionBlock::Load(checkpoint, prefix, config, heads, std::move(rope), backend));
    return std::unique_ptr<AttentionLayer>(std::move(block));
  };
  return LoadMoeDecoder(config, checkpoint, backend, options, family);
}

}  // namespace sparkstack
