#include "kernels/cuda/ops/dense_linear_reference.h"

#include <cmath>

namespace sparkstack::kernels::cuda_ops {

std::vector<double> ReferenceLinear(const std::vector<double>& x, const std::vector<double>& w,
                                    int64_t m, int64_t n, int64_t k) {
  std::vector<double> y(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < k; ++p) sum += x[i * k + p] * w[j * k + p];
      y[i * n + j] = sum;
    }
  }
  return y;
}

}  // namespace sparkstack::kernels::cuda_ops
