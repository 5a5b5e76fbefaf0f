// Writes small random models in the Hugging Face layout, for tests, demos and peers' checks.
#ifndef SPARKSTACK_RUNTIME_MODEL_TINY_MODEL_H_
#define SPARKSTACK_RUNTIME_MODEL_TINY_MODEL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "runtime/model/model_config.h"

namespace sparkstack {

struct TinyModelOptions {
  ModelConfig config;  // architecture and sizes; torch_dtype picks f32 or bf16 storage
  uint64_t seed = 0;
};

// A config for a tiny model of `architecture` with small defaults (hidden 64, 2 layers, ...).
ModelConfig TinyModelConfig(Architecture architecture);

// Writes DIR/config.json and DIR/model.safetensors with seeded random weights: linear layers
// uniform in ±sqrt(3 / in_features) (unit-variance outputs), embeddings standard normal, norm
// weights 1 ± 0.2 so that a wrong norm shows. The same options and seed give the same bytes.
absl::Status WriteTinyModel(const TinyModelOptions& options, const std::string& dir);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_TINY_MODEL_H_
