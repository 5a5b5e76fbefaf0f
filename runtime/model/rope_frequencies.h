// RoPE inverse frequencies, including Llama 3.1's "llama3" scaling.
#ifndef SPARKSTACK_RUNTIME_MODEL_ROPE_FREQUENCIES_H_
#define SPARKSTACK_RUNTIME_MODEL_ROPE_FREQUENCIES_H_

#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/model/model_config.h"

namespace sparkstack {

// head_dim / 2 inverse frequencies theta^(-2i / head_dim), rescaled as Hugging Face's
// _compute_llama3_parameters does when rope_scaling.type == "llama3": long wavelengths (beyond
// original_max_position / low_freq_factor) are divided by factor, short ones (below
// original_max_position / high_freq_factor) kept, and the band between interpolated smoothly.
std::vector<float> RopeInverseFrequencies(const ModelConfig& config);

// cos/sin tables for positions [0, max_positions) on `backend` (rotate-half over the whole head).
// The angle is computed in float32 as Hugging Face does (position * inv_freq), its cos and sin in
// float64, then rounded.
absl::StatusOr<RopeTables> MakeRopeTables(const ModelConfig& config, int64_t max_positions,
                                          Backend& backend);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_ROPE_FREQUENCIES_H_
