// AddBias kernel: grid (rows), 128 threads striding over the row's elements.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_ADD_BIAS_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_ADD_BIAS_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kAddBiasThreads = 128;

template <typename T>
__global__ void __launch_bounds__(kAddBiasThreads)
    AddBiasKernel(float* x, int64_t width, const T* bias) {
  float* row = x + static_cast<int64_t>(blockIdx.x) * width;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) row[i] = row[i] + ToFloat(bias[i]);
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_ADD_BIAS_CUH_
