// MiniMax-M2 (MiniMaxM2ForCausalLM): GQA whose q and k are each RMS-normalised across all heads of
// the projection before RoPE, rotate-half RoPE on the first rotary_dim dims of each head, and
// sigmoid routing with a correction bias and renormalised weights in every layer (no shared
// expert, no dense layers). Expert tensors are block_sparse_moe.experts.E.{w1,w3,w2}.
#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadMiniMaxM2Model(const ModelConfig& config,
                                                          const Checkpoint& checkpoint,
                                                          Backend& backend,
                                                          const ModelLoadOptions& options) {
  if (config.attention_bias) {
    return absl::UnimplementedError("attention_bias = true is not supported for MiniMax-M2");
  }
  return LoadGqaMoeDecoder(config, checkpoint, backend, options);
}

}  // namespace sparkstack
