#include "kernels/cuda/ops/rope.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/rope.cuh"

namespace sparkstack::kernels::cuda_ops {

int LaunchRope(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
               const int32_t* positions, const float* cos, const float* sin, int64_t rotary_dim,
               bool interleaved, void* stream) {
  if (tokens < 0 || heads < 0 || tokens > 0x7fffffff || rotary_dim <= 0 || rotary_dim % 2 != 0 ||
      rotary_dim > head_dim) {
    return kInvalidValue;
  }
  if (tokens == 0 || heads == 0) return 0;
  if (x == nullptr || positions == nullptr || cos == nullptr || sin == nullptr) {
    return kInvalidValue;
  }
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid(static_cast<unsigned>(tokens));
  auto* kernel = interleaved ? &detail::RopeKernel<true> : &detail::RopeKernel<false>;
  return cuda::LaunchKernel(kernel, grid, detail::kRopeThreads, 0, s, x, heads, head_dim,
                            positions, cos, sin, rotary_dim / 2);
}

}  // namespace sparkstack::kernels::cuda_ops
