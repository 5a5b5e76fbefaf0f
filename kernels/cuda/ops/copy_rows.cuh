// Row-copy kernels: grid (rows), 128 threads striding over the row's elements.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_COPY_ROWS_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_COPY_ROWS_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kCopyRowsThreads = 128;

__global__ void __launch_bounds__(kCopyRowsThreads)
    GatherRowsKernel(const float* x, int64_t width, const int32_t* rows, float* out) {
  const int64_t r = blockIdx.x;
  const float* src = x + static_cast<int64_t>(rows[r]) * width;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) out[r * width + i] = src[i];
}

__global__ void __launch_bounds__(kCopyRowsThreads)
    CopyColumnsKernel(const float* src, int64_t ld_src, float* dst, int64_t ld_dst,
                      int64_t width) {
  const int64_t r = blockIdx.x;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
    dst[r * ld_dst + i] = src[r * ld_src + i];
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_COPY_ROWS_CUH_
