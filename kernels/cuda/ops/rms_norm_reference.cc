#include "kernels/cuda/ops/rms_norm_reference.h"

#include <cmath>

namespace sparkstack::kernels::cuda_ops {

std::vector<double> ReferenceRmsNorm(const std::vector<double>& x, int64_t rows, int64_t width,
                                     const std::vector<double>& weight, double eps) {
  std::vector<double> out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0.0;
    for (int64_t i = 0; i < width; ++i) sum += x[r * width + i] * x[r * width + i];
    const double scale = 1.0 / std::sqrt(sum / static_cast<double>(width) + eps);
    for (int64_t i = 0; i < width; ++i) out[r * width + i] = x[r * width + i] * scale * weight[i];
  }
  return out;
}

}  // namespace sparkstack::kernels::cuda_ops
