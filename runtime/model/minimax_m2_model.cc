// MiniMax-M2 (MiniMaxM2ForCausalLM): GQA whose q and k are each RMS-normalised across all heads of
// the projection before RoPE, rotate-half RoPE on the first rotary_dim dims of each head, and
// sigmoid routing with a correction bias and renormalised weights in every layer (no shared
// expert, no dense layers). Expert tensors are block_sparse_moe.experts.E.{w1,w3,w2}.
#include <memory>

#include "runtime/core/status_macros.h"
#include "runtime/model/attention_block.h"
#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadMiniMaxM2Model(const ModelConfig& config,
                                                          const Checkpoint& checkpoint,
                                                          Backend& backend,
                                                          const ModelLoadOptions& options) {
  if (config.attention_bias) {
    return absl::UnimplementedError("attention_bias = true is not supported for MiniMax-M2");
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
        AttentionBlock::Load(checkpoint, prefix, config, heads, std::move(rope), backend, tp));
    return std::unique_ptr<AttentionLayer>(std::move(block));
  };
  return LoadMoeDecoder(config, checkpoint, backend, options, family);
}

}  // namespace sparkstack
