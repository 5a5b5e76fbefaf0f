// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3's attention (per-head q/k RMSNorm, rotate-half
// RoPE over the whole head, GQA) and softmax top-k routing in every layer except mlp_only_layers
// and those decoder_sparse_step skips.
#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadQwen3MoeModel(const ModelConfig& config,
                                                         const Checkpoint& checkpoint,
                                                         Backend& backend,
                                                         const ModelLoadOptions& options) {
  if (config.attention_bias) {
    return absl::UnimplementedError("attention_bias = true is not supported for Qwen3-MoE");
  }
  return LoadGqaMoeDecoder(config, checkpoint, backend, options);
}

}  // namespace sparkstack
