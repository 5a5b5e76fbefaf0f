// GLM-4.5 / 4.6 / 4.7 (Glm4MoeForCausalLM; 4.5-Air without q/k norms): GQA with q/k/v biases,
// optional per-head q/k RMSNorm, rotate-half RoPE on the first half of each head
// (partial_rotary_factor 0.5); sigmoid routing with a correction bias and scaling, a shared expert
// and first_k_dense_replace dense layers. The multi-token-prediction layer is skipped.
#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadGlm4MoeModel(const ModelConfig& config,
                                                        const Checkpoint& checkpoint,
                                                        Backend& backend,
                                                        const ModelLoadOptions& options) {
  return LoadGqaMoeDecoder(config, checkpoint, backend, options);
}

}  // namespace sparkstack
