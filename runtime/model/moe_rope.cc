#include "runtime/model/moe_rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {
namespace {

double YarnMscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

bool IsYarn(const ModelConfig& c) { return c.rope_scaling.type == "yarn"; }

}  // namespace

absl::StatusOr<std::vector<double>> RotaryInverseFrequencies(const ModelConfig& config) {
  const RopeScaling& s = config.rope_scaling;
  if (s.type != "none" && s.type != "yarn") {
    return absl::UnimplementedError(absl::StrCat(
        "rope_scaling type ", s.type, " for ", std::string(ArchitectureName(config.architecture))));
  }
  const int64_t d = config.rotary_dim;
  const double base = config.rope_theta;
  std::vector<double> inv_freq(d / 2);
  for (int64_t i = 0; i < d / 2; ++i) {
    // transformers computes base ** (arange(0, d, 2) / d) in float32.
    const float pos_freq =
        static_cast<float>(std::pow(base, static_cast<double>(2 * i) / static_cast<double>(d)));
    inv_freq[i] = static_cast<float>(1.0f / pos_freq);
  }
  if (!IsYarn(config)) return inv_freq;
  const double factor = s.factor;
  auto correction = [&](double rotations) {
    return static_cast<double>(d) *
           std::log(static_cast<double>(s.original_max_position_embeddings) /
                    (rotations * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(base));
  };
  double low = correction(s.beta_fast);
  double high = correction(s.beta_slow);
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(d - 1));
  if (low == high) high += 0.001;
  for (int64_t i = 0; i < d / 2; ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolation = 1.0 - ramp;  // transformers' inv_freq_extrapolation_factor
    const double f = inv_freq[i];
    inv_freq[i] = f / factor * (1.0 - extrapolation) + f * extrapolation;
  }
  return inv_freq;
}

double RotaryAttentionFactor(const ModelConfig& config) {
  const RopeScaling& s = config.rope_scaling;
  if (!IsYarn(config)) return 1.0;
  if (s.attention_factor > 0) return s.attention_factor;
  if (s.mscale > 0 && s.mscale_all_dim > 0) {
    return YarnMscale(s.factor, s.mscale) / YarnMscale(s.factor, s.mscale_all_dim);
  }
  return YarnMscale(s.factor, 1.0);
}

double MlaSoftmaxScale(const ModelConfig& config) {
  double scale =
      1.0 /
      std::sqrt(static_cast<double>(config.mla.qk_nope_head_dim + config.mla.qk_rope_head_dim));
  if (IsYarn(config) && config.rope_scaling.mscale_all_dim > 0) {
    const double m = YarnMscale(config.rope_scaling.factor, config.rope_scaling.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

absl::StatusOr<RopeTables> MakeMoeRopeTables(const ModelConfig& config, int64_t max_positions,
                                             Backend& backend) {
  SPARKSTACK_ASSIGN_OR_RETURN(std::vector<double> inv_freq, RotaryInverseFrequencies(config));
  const int64_t half = std::ssize(inv_freq);
  if (max_positions <= 0 || half <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rope tables for ", max_positions, " positions and rotary_dim ", config.rotary_dim));
  }
  const double attention_factor = RotaryAttentionFactor(config);
  Tensor cos = Tensor::Zeros(DType::kF32, {max_positions, half});
  Tensor sin = Tensor::Zeros(DType::kF32, {max_positions, half});
  for (int64_t p = 0; p < max_positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * static_cast<float>(inv_freq[i]);
      cos.data_as<float>()[p * half + i] =
          static_cast<float>(std::cos(static_cast<double>(angle)) * attention_factor);
      sin.data_as<float>()[p * half + i] =
          static_cast<float>(std::sin(static_cast<double>(angle)) * attention_factor);
    }
  }
  RopeTables tables;
  SPARKSTACK_ASSIGN_OR_RETURN(tables.cos, backend.Upload(cos));
  SPARKSTACK_ASSIGN_OR_RETURN(tables.sin, backend.Upload(sin));
  tables.rotary_dim = config.rotary_dim;
  tables.interleaved = config.rope_interleaved;
  return tables;
}

}  // namespace sparkstack
