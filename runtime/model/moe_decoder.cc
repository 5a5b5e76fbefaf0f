#include "runtime/model/moe_decoder.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/attention_block.h"
#include "runtime/model/linear_loader.h"
#include "runtime/model/mlp_block.h"
#include "runtime/model/moe_block.h"
#include "runtime/model/moe_rope.h"
#include "spdlog/spdlog.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadMoeDecoder(const ModelConfig& config,
                                                      const Checkpoint& checkpoint,
                                                      Backend& backend,
                                                      const ModelLoadOptions& options,
                                                      const MoeFamily& family) {
  const ModelShard& shard = options.shard;
  const TensorParallel tp = TensorParallelOf(shard);
  const int ep = shard.ep_size > 0 ? shard.ep_size : shard.tp_size;
  SPARKSTACK_ASSIGN_OR_RETURN(Range layers, ShardLayers(config, shard));

  DecoderParts parts;
  parts.config = config;
  parts.shard = shard;
  parts.max_model_len =
      options.max_model_len > 0 ? options.max_model_len : config.max_position_embeddings;
  parts.kv_cache_spec = family.kv_cache;
  parts.kv_cache_spec.num_layers = layers.size();
  if (shard.first_stage) {
    SPARKSTACK_ASSIGN_OR_RETURN(
        parts.embedding,
        VocabEmbedding::Load(checkpoint, "model.embed_tokens.weight", config, tp, backend));
  }
  if (shard.last_stage) {
    SPARKSTACK_ASSIGN_OR_RETURN(parts.head, LogitsHead::Load(checkpoint, config, tp, backend));
  }
  // Multi-token-prediction layers follow the decoder layers in the checkpoint.
  const std::string mtp_prefix = absl::StrCat("model.layers.", config.num_layers, ".");
  const std::vector<std::string> names = checkpoint.TensorNames();  // sorted
  const auto mtp = std::lower_bound(names.begin(), names.end(), mtp_prefix);
  if (mtp != names.end() && mtp->starts_with(mtp_prefix)) {
    spdlog::info("{}: skipping the multi-token-prediction layers from layer {} on ({} in the "
                 "config; plain decoding does not use them)",
                 checkpoint.dir(), config.num_layers, config.num_mtp_layers);
  }
  SPARKSTACK_ASSIGN_OR_RETURN(RopeTables tables,
                              MakeMoeRopeTables(config, parts.max_model_len, backend));
  auto rope = std::make_shared<const RopeTables>(std::move(tables));
  for (int64_t i = layers.begin; i < layers.end; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    DecoderLayer layer;
    SPARKSTACK_ASSIGN_OR_RETURN(
        Tensor attention_norm,
        LoadFloatTensor(checkpoint, p + "input_layernorm.weight", {config.hidden_size}));
    SPARKSTACK_ASSIGN_OR_RETURN(
        Tensor ffn_norm,
        LoadFloatTensor(checkpoint, p + "post_attention_layernorm.weight", {config.hidden_size}));
    SPARKSTACK_ASSIGN_OR_RETURN(layer.attention_norm, backend.Upload(attention_norm));
    SPARKSTACK_ASSIGN_OR_RETURN(layer.ffn_norm, backend.Upload(ffn_norm));
    SPARKSTACK_ASSIGN_OR_RETURN(layer.attention, family.attention(p + "self_attn.", rope));
    if (IsMoeLayer(config, i)) {
      SPARKSTACK_ASSIGN_OR_RETURN(layer.ffn,
                                  MoeBlock::Load(checkpoint, p, config, tp, ep, backend));
    } else {
      SPARKSTACK_ASSIGN_OR_RETURN(layer.ffn,
                                  MlpBlock::Load(checkpoint, p + "mlp.", config.hidden_size,
                                                 config.intermediate_size, tp, backend));
    }
    parts.layers.push_back(std::move(layer));
  }
  return MakeDecoderModel(backend, std::move(parts));
}

absl::StatusOr<std::unique_ptr<Model>> LoadGqaMoeDecoder(const ModelConfig& config,
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
