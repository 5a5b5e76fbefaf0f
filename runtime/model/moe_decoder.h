// The decoder stack of the mixture-of-experts families (Qwen3-MoE, DeepSeek-V3, GLM-4 MoE,
// MiniMax-M2) on the shared DecoderModel: per layer the family's attention and either the shared
// MoE block (moe_block.h) or, for the dense layers (first_k_dense_replace, mlp_only_layers,
// decoder_sparse_step), the shared dense MLP of intermediate_size. A family file supplies only its
// attention and KV cache shape. Multi-token-prediction layers (model.layers.N for N >=
// num_hidden_layers) are not loaded; LoadMoeDecoder logs a note when the checkpoint has them.
#ifndef SPARKSTACK_RUNTIME_MODEL_MOE_DECODER_H_
#define SPARKSTACK_RUNTIME_MODEL_MOE_DECODER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/decoder_model.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/model.h"

namespace sparkstack {

struct MoeFamily {
  // Loads the attention of one layer: `prefix` is "model.layers.N.self_attn.", `rope` the model's
  // shared tables (moe_rope.h).
  std::function<absl::StatusOr<std::unique_ptr<AttentionLayer>>(
      const std::string& prefix, std::shared_ptr<const RopeTables> rope)>
      attention;
  // Per-layer KV pools of this shard (num_layers is filled in by LoadMoeDecoder).
  KvCacheSpec kv_cache;
};

absl::StatusOr<std::unique_ptr<Model>> LoadMoeDecoder(const ModelConfig& config,
                                                      const Checkpoint& checkpoint,
                                                      Backend& backend,
                                                      const ModelLoadOptions& options,
                                                      const MoeFamily& family);

// LoadMoeDecoder with the shared GQA attention block (attention_block.h; its biases, q/k norms
// and partial rotary follow the config) and a KV cache of this rank's kv heads: the families
// without MLA.
absl::StatusOr<std::unique_ptr<Model>> LoadGqaMoeDecoder(const ModelConfig& config,
                                                         const Checkpoint& checkpoint,
                                                         Backend& backend,
                                                         const ModelLoadOptions& options);

// Family entry points (model.cc's registry). Each checks what its family file implements and
// returns Unimplemented naming anything else.
absl::StatusOr<std::unique_ptr<Model>> LoadQwen3MoeModel(const ModelConfig& config,
                                                         const Checkpoint& checkpoint,
                                                         Backend& backend,
                                                         const ModelLoadOptions& options);
absl::StatusOr<std::unique_ptr<Model>> LoadDeepseekV3Model(const ModelConfig& config,
                                                           const Checkpoint& checkpoint,
                                                           Backend& backend,
                                                           const ModelLoadOptions& options);
absl::StatusOr<std::unique_ptr<Model>> LoadGlm4MoeModel(const ModelConfig& config,
                                                        const Checkpoint& checkpoint,
                                                        Backend& backend,
                                                        const ModelLoadOptions& options);
absl::StatusOr<std::unique_ptr<Model>> LoadMiniMaxM2Model(const ModelConfig& config,
                                                          const Checkpoint& checkpoint,
                                                          Backend& backend,
                                                          const ModelLoadOptions& options);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_MOE_DECODER_H_
