// RoPE tables for the mixture-of-experts families: partial rotary (GLM-4 MoE and MiniMax-M2 turn
// the first rotary_dim dims of each head), adjacent-pair rotation (DeepSeek's rope_interleave) and
// YaRN (DeepSeek-V3's 40x context extension with its attention temperature), as transformers
// computes them (_compute_yarn_parameters, DeepseekV3Attention's softmax scale).
#ifndef SPARKSTACK_RUNTIME_MODEL_MOE_ROPE_H_
#define SPARKSTACK_RUNTIME_MODEL_MOE_ROPE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/model/model_config.h"

namespace sparkstack {

// rotary_dim / 2 inverse frequencies theta^(-2i / rotary_dim), with YaRN when
// rope_scaling.type == "yarn": with d = rotary_dim, base theta, factor s and original context L,
//   corr(r) = d * ln(L / (2 pi r)) / (2 ln theta);  low = max(floor(corr(beta_fast)), 0),
//   high = min(ceil(corr(beta_slow)), d - 1) (without floor/ceil when truncate is false);
//   ramp_i = clamp((i - low) / (high - low), 0, 1) (high += 0.001 when equal);
//   inv_freq_i = f_i / s * ramp_i + f_i * (1 - ramp_i).
// Unimplemented for llama3 scaling (no MoE family uses it).
absl::StatusOr<std::vector<double>> RotaryInverseFrequencies(const ModelConfig& config);

// YaRN's multiplier of cos and sin (1 without YaRN): attention_factor if given, else
// m(s, mscale) / m(s, mscale_all_dim) when both are set, else m(s, 1), with
// m(s, k) = 1 for s <= 1, 0.1 k ln s + 1 otherwise.
double RotaryAttentionFactor(const ModelConfig& config);

// The softmax scale of MLA attention: 1 / sqrt(qk_nope + qk_rope), times m(s, mscale_all_dim)^2
// when YaRN sets mscale_all_dim (DeepSeek-V3: 0.1 ln 40 + 1 = 1.369 squared).
double MlaSoftmaxScale(const ModelConfig& config);

// cos/sin tables for positions [0, max_positions) over config.rotary_dim, interleaved as
// config.rope_interleaved says, the YaRN attention factor multiplied in. The angle is
// position * inv_freq rounded to float32 (as transformers computes it), its cos/sin in float64.
absl::StatusOr<RopeTables> MakeMoeRopeTables(const ModelConfig& config, int64_t max_positions,
                                             Backend& backend);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_MOE_ROPE_H_
