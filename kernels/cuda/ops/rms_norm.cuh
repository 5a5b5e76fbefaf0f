// RMSNorm kernel. Grid (rows), one block per row, blockDim.x (a multiple of 32, <= 256) threads
// striding over the width. Pass 1: (residual += delta,) sum of squares in float64; a block
// reduction gives the f32 scale; pass 2 rescales. Each thread rereads in pass 2 exactly the
// elements it wrote in pass 1, so `out` may alias the input it replaces.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_RMS_NORM_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_RMS_NORM_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"
#include "kernels/cuda/shared_memory.h"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kRmsNormMaxThreads = 256;

template <typename W, bool kAdd>
__global__ void __launch_bounds__(kRmsNormMaxThreads)
    RmsNormKernel(float* x, const float* delta, int64_t width, const W* weight, float eps,
                  float* out) {
  SPARKSTACK_SHARED_ARRAY(double, scratch, 32);
  const int64_t row = blockIdx.x;
  float* in = x + row * width;
  double sum_sq = 0.0;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
    float v = in[i];
    if constexpr (kAdd) {
      v = v + delta[row * width + i];
      in[i] = v;
    }
    sum_sq += static_cast<double>(v) * v;
  }
  sum_sq = BlockSum(sum_sq, scratch);
  const float inv_rms = static_cast<float>(1.0 / sqrt(sum_sq / static_cast<double>(width) + eps));
  float* o = out + row * width;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
    o[i] = MulRn(MulRn(in[i], inv_rms), ToFloat(weight[i]));
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_RMS_NORM_CUH_
