// RoPE inverse frequencies, including Llama 3.1's "llama3" scaling.
#ifndef SPARKSTACK_RUNTIME_MODEL_ROPE_FREQUENCIES_H_
#define SPARKSTACK_RUNTIME_MODEL_ROPE_FREQUENCIES_H_

#include <vector>

#include "runtime/model/model_config.h"

namespace sparkstack {

// head_dim / 2 inverse frequencies theta^(-2i / head_dim), rescaled as Hugging Face's
// _compute_llama3_parameters does when rope_scaling.type == "llama3": long wavelengths (beyond
// original_max_position / low_freq_factor) are divided by factor, short ones (below
// original_max_position / high_freq_factor) kept, and the band between interpolated smoothly.
std::vector<float> RopeInverseFrequencies(const ModelConfig& config);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_ROPE_FREQUENCIES_H_
