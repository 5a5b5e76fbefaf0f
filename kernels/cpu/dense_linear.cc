#include "kernels/cpu/dense_linear.h"

#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/parallel_columns.h"

namespace sparkstack::kernels {

float DotF32(const float* a, const float* b, int64_t count) {
  float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    for (int j = 0; j < 8; ++j) partial[j] += a[i + j] * b[i + j];
  }
  float sum = ((partial[0] + partial[4]) + (partial[1] + partial[5])) +
              ((partial[2] + partial[6]) + (partial[3] + partial[7]));
  for (; i < count; ++i) sum += a[i] * b[i];
  return sum;
}

namespace {

// Columns [n_begin, n_end): each weight row is widened once and reused for all M rows of x.
void LinearColumns(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype,
                   int64_t n, int64_t n_begin, int64_t n_end, float* y) {
  std::vector<float> row(k);
  for (int64_t j = n_begin; j < n_end; ++j) {
    const float* w_row;
    if (w_dtype == DType::kF32) {
      w_row = static_cast<const float*>(w) + j * k;
    } else {
      LoadAsFloat(w, w_dtype, j * k, k, row.data());
      w_row = row.data();
    }
    for (int64_t i = 0; i < m; ++i) y[i * n + j] = DotF32(x + i * k, w_row, k);
  }
}

}  // namespace

void DenseLinearF32(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n,
                    float* y, int threads) {
  ForEachColumnRange(n, m * n * k, threads, [&](int64_t begin, int64_t end) {
    LinearColumns(x, m, k, w, w_dtype, n, begin, end, y);
  });
}

}  // namespace sparkstack::kernels
