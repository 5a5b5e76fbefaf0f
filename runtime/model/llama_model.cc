// The Llama family on the shared decoder stack: GQA attention (with Qwen3's per-head q/k norms)
// and a dense gated MLP in every layer.
#include "runtime/model/llama_model.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/attention_block.h"
#include "runtime/model/decoder_model.h"
#include "runtime/model/linear_loader.h"
#include "runtime/model/mlp_block.h"
#include "runtime/model/rope_frequencies.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadLlamaModel(const ModelConfig& config,
                                                      const Checkpoint& checkpoint,
                                                      Backend& backend,
                                                      const ModelLoadOptions& options) {
  if (config.attention_bias) {
    return absl::UnimplementedError("attention_bias = true is not supported for the llama family");
  }
  const ModelShard& shard = options.shard;
  const TensorParallel tp = TensorParallelOf(shard);
  SPARKSTACK_ASSIGN_OR_RETURN(AttentionShard heads,
                              ShardAttention(config.num_heads, config.num_kv_heads, tp));
  SPARKSTACK_ASSIGN_OR_RETURN(Range layers, ShardLayers(config, shard));

  DecoderParts parts;
  parts.config = config;
  parts.shard = shard;
  parts.max_model_len =
      options.max_model_len > 0 ? options.max_model_len : config.max_position_embeddings;
  parts.kv_cache_spec = {.num_layers = layers.size(),
                         .kv_heads = heads.kv_heads,
                         .head_dim = config.head_dim,
                         .v_head_dim = config.head_dim,
                         .dtype = DType::kF32};
  if (shard.first_stage) {
    SPARKSTACK_ASSIGN_OR_RETURN(
        parts.embedding,
        VocabEmbedding::Load(checkpoint, "model.embed_tokens.weight", config, tp, backend));
  }
  if (shard.last_stage) {
    SPARKSTACK_ASSIGN_OR_RETURN(parts.head, LogitsHead::Load(checkpoint, config, tp, backend));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(RopeTables tables,
                              MakeRopeTables(config, parts.max_model_len, backend));
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
    SPARKSTACK_ASSIGN_OR_RETURN(
        layer.attention,
        AttentionBlock::Load(checkpoint, p + "self_attn.", config, heads, rope, backend));
    SPARKSTACK_ASSIGN_OR_RETURN(layer.ffn,
                                MlpBlock::Load(checkpoint, p + "mlp.", config.hidden_size,
                                               config.intermediate_size, tp, backend));
    parts.layers.push_back(std::move(layer));
  }
  return MakeDecoderModel(backend, std::move(parts));
}

}  // namespace sparkstack
