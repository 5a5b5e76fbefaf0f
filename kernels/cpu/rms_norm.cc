#include "kernels/cpu/rms_norm.h"

#include <cmath>
#include <vector>

#include "kernels/cpu/convert.h"

namespace sparkstack::kernels {

void RmsNormF32(const float* x, int64_t rows, int64_t width, const void* weight,
                DType weight_dtype, float eps, float* out) {
  std::vector<float> w(width);
  LoadAsFloat(weight, weight_dtype, 0, width, w.data());
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * width;
    double sum_sq = 0.0;
    for (int64_t i = 0; i < width; ++i) sum_sq += static_cast<double>(in[i]) * in[i];
    const float inv_rms = static_cast<float>(1.0 / std::sqrt(sum_sq / width + eps));
    float* o = out + r * width;
    for (int64_t i = 0; i < width; ++i) o[i] = in[i] * inv_rms * w[i];
  }
}

}  // namespace sparkstack::kernels
