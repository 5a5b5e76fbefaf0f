// RoPE kernel. Grid (tokens), 128 threads striding over the heads x rotary_dim / 2 pairs of the
// token; the token's cos/sin row is read once per pair (it stays in L1).
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_ROPE_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_ROPE_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kRopeThreads = 128;

template <bool kInterleaved>
__global__ void __launch_bounds__(kRopeThreads)
    RopeKernel(float* x, int64_t heads, int64_t head_dim, const int32_t* positions,
               const float* cos_table, const float* sin_table, int64_t half) {
  const int64_t t = blockIdx.x;
  const int64_t pos = positions[t];
  const float* c = cos_table + pos * half;
  const float* s = sin_table + pos * half;
  float* token = x + t * heads * head_dim;
  for (int64_t p = threadIdx.x; p < heads * half; p += blockDim.x) {
    const int64_t h = p / half;
    const int64_t i = p % half;
    float* v = token + h * head_dim;
    const int64_t ia = kInterleaved ? 2 * i : i;
    const int64_t ib = kInterleaved ? 2 * i + 1 : i + half;
    const float a0 = v[ia];
    const float b0 = v[ib];
    v[ia] = SubRn(MulRn(a0, c[i]), MulRn(b0, s[i]));
    v[ib] = AddRn(MulRn(b0, c[i]), MulRn(a0, s[i]));
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_ROPE_CUH_
