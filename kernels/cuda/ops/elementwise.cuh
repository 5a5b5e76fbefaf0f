// Element-wise kernels: a grid-stride loop over the elements, 256 threads per block.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_ELEMENTWISE_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_ELEMENTWISE_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kElementwiseThreads = 256;
inline constexpr int64_t kElementwiseMaxBlocks = 4096;

__device__ __forceinline__ int64_t GridStrideBegin() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t GridStride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

__global__ void __launch_bounds__(kElementwiseThreads)
    AddKernel(float* x, const float* y, int64_t count) {
  for (int64_t i = GridStrideBegin(); i < count; i += GridStride()) x[i] = x[i] + y[i];
}

__global__ void __launch_bounds__(kElementwiseThreads)
    SwiGluKernel(const float* gate, const float* up, int64_t count, float* out) {
  for (int64_t i = GridStrideBegin(); i < count; i += GridStride()) {
    const float g = gate[i];
    out[i] = DivRn(g, AddRn(1.0f, expf(-g))) * up[i];
  }
}

__global__ void __launch_bounds__(kElementwiseThreads)
    ConvertToBf16Kernel(const float* x, int64_t rows, int64_t cols, __nv_bfloat16* out,
                        int64_t ldo) {
  const int64_t count = rows * ldo;
  for (int64_t i = GridStrideBegin(); i < count; i += GridStride()) {
    const int64_t r = i / ldo;
    const int64_t c = i % ldo;
    out[i] = __float2bfloat16_rn(c < cols ? x[r * cols + c] : 0.0f);
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_ELEMENTWISE_CUH_
