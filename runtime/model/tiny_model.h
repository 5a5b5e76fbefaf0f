// Writes small random models in the Hugging Face layout, for tests, demos and peers' checks.
#ifndef SPARKSTACK_RUNTIME_MODEL_TINY_MODEL_H_
#define SPARKSTACK_RUNTIME_MODEL_TINY_MODEL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runtime/model/model_config.h"

namespace sparkstack {

struct TinyModelOptions {
  ModelConfig config;  // architecture and sizes; torch_dtype picks f32 or bf16 storage
  uint64_t seed = 0;
  // Linear layers (not the router, embeddings, lm_head or norms) as DeepSeek FP8: e4m3 with
  // 128x128 block scales (runtime/quant/fp8_block.h), and config.json's quantization_config.
  bool fp8_block = false;
};

// A config for a tiny model of `architecture` with small defaults (hidden 64, 2 layers, ...;
// the MoE families with a handful of experts, groups, shared experts and leading dense layers as
// their architecture has them).
ModelConfig TinyModelConfig(Architecture architecture);

// TinyModelConfig as config.json, with `overrides` (Hugging Face keys, e.g. {"num_experts": 7,
// "n_group": 1}) merged on top, parsed back: ParseModelConfig's errors for an inconsistent result.
absl::StatusOr<ModelConfig> TinyModelConfigWithOverrides(Architecture architecture,
                                                         const nlohmann::json& overrides);

// Writes DIR/config.json and DIR/model.safetensors with seeded random weights: linear layers
// uniform in ±sqrt(3 / in_features) (unit-variance outputs), embeddings standard normal, norm
// weights 1 ± 0.2 so that a wrong norm shows, attention biases uniform in ±0.5, MoE correction
// biases (f32) uniform in ±0.05. Tensor names and shapes are those of each family's Hugging Face
// checkpoints (model.layers.N.mlp.experts.E.gate_proj, block_sparse_moe.experts.E.w1, MLA's
// q_a_proj / kv_a_proj_with_mqa / kv_b_proj, ...); multi-token-prediction layers get a few
// tensors of their own for loaders to skip. The same options and seed give the same bytes.
absl::Status WriteTinyModel(const TinyModelOptions& options, const std::string& dir);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_TINY_MODEL_H_
