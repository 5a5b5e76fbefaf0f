#include "runtime/model/rope_frequencies.h"

#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {

std::vector<float> RopeInverseFrequencies(const ModelConfig& config) {
  const int64_t half = config.head_dim / 2;
  std::vector<float> inv_freq(half);
  const RopeScaling& s = config.rope_scaling;
  for (int64_t i = 0; i < half; ++i) {
    // Hugging Face rounds the base frequencies to float32 before scaling them.
    const double base = static_cast<float>(
        1.0 / std::pow(config.rope_theta, static_cast<double>(2 * i) / config.head_dim));
    double freq = base;
    if (s.type == "llama3") {
      const double old_context = static_cast<double>(s.original_max_position_embeddings);
      const double low_freq_wavelen = old_context / s.low_freq_factor;
      const double high_freq_wavelen = old_context / s.high_freq_factor;
      const double wavelen = 2.0 * std::numbers::pi / base;
      if (wavelen > low_freq_wavelen) {
        freq = base / s.factor;
      } else if (wavelen >= high_freq_wavelen) {
        const double smooth =
            (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        freq = (1.0 - smooth) * base / s.factor + smooth * base;
      }
    }
    inv_freq[i] = static_cast<float>(freq);
  }
  return inv_freq;
}

absl::StatusOr<RopeTables> MakeRopeTables(const ModelConfig& config, int64_t max_positions,
                                          Backend& backend) {
  const std::vector<float> inv_freq = RopeInverseFrequencies(config);
  const int64_t half = std::ssize(inv_freq);
  if (max_positions <= 0 || half <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("rope tables for ", max_positions,
                                                   " positions and head_dim ", config.head_dim));
  }
  Tensor cos = Tensor::Zeros(DType::kF32, {max_positions, half});
  Tensor sin = Tensor::Zeros(DType::kF32, {max_positions, half});
  for (int64_t p = 0; p < max_positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq[i];
      cos.data_as<float>()[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin.data_as<float>()[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  RopeTables tables;
  SPARKSTACK_ASSIGN_OR_RETURN(tables.cos, backend.Upload(cos));
  SPARKSTACK_ASSIGN_OR_RETURN(tables.sin, backend.Upload(sin));
  tables.rotary_dim = 2 * half;
  tables.interleaved = false;
  return tables;
}

}  // namespace sparkstack
