#include "kernels/cpu/rope.h"

#include <cmath>
#include <vector>

namespace sparkstack::kernels {

void RopeRotateHalfF32(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                       const int32_t* positions, const float* inv_freq) {
  const int64_t half = head_dim / 2;
  std::vector<float> cos_t(half), sin_t(half);
  for (int64_t t = 0; t < tokens; ++t) {
    // The angle in float32 as Hugging Face computes it (position * inv_freq), then cos/sin.
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(positions[t]) * inv_freq[i];
      cos_t[i] = std::cos(angle);
      sin_t[i] = std::sin(angle);
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i];
        const float b = v[i + half];
        v[i] = a * cos_t[i] - b * sin_t[i];
        v[i + half] = b * cos_t[i] + a * sin_t[i];
      }
    }
  }
}

}  // namespace sparkstack::kernels
