#include "kernels/cpu/rope.h"

namespace sparkstack::kernels {

void RopeF32(float* x, int64_t tokens, int64_t heads, int64_t head_dim, const int32_t* positions,
             const float* cos, const float* sin, int64_t rotary_dim, bool interleaved) {
  const int64_t half = rotary_dim / 2;
  // Rotate-half pairs (i, i + half); interleaved pairs (2i, 2i + 1).
  const int64_t first_stride = interleaved ? 2 : 1;
  const int64_t partner_offset = interleaved ? 1 : half;
  for (int64_t t = 0; t < tokens; ++t) {
    const float* c = cos + int64_t{positions[t]} * half;
    const float* s = sin + int64_t{positions[t]} * half;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        float& a = v[i * first_stride];
        float& b = v[i * first_stride + partner_offset];
        const float a0 = a;
        const float b0 = b;
        a = a0 * c[i] - b0 * s[i];
        b = b0 * c[i] + a0 * s[i];
      }
    }
  }
}

}  // namespace sparkstack::kernels
