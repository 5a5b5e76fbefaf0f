#include "kernels/cuda/ops/rope_reference.h"

#include <cmath>

namespace sparkstack::kernels::cuda_ops {

std::vector<double> ReferenceRope(const std::vector<double>& x, int64_t tokens, int64_t heads,
                                  int64_t head_dim, const std::vector<int32_t>& positions,
                                  const std::vector<double>& inv_freq, int64_t rotary_dim,
                                  bool interleaved) {
  std::vector<double> out = x;
  const int64_t half = rotary_dim / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      double* v = out.data() + (t * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const double angle = positions[t] * inv_freq[i];
        const int64_t ia = interleaved ? 2 * i : i;
        const int64_t ib = interleaved ? 2 * i + 1 : i + half;
        const double a = v[ia], b = v[ib];
        v[ia] = a * std::cos(angle) - b * std::sin(angle);
        v[ib] = b * std::cos(angle) + a * std::sin(angle);
      }
    }
  }
  return out;
}

}  // namespace sparkstack::kernels::cuda_ops
