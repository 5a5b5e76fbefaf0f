// Device helpers shared by the ops of kernels/cuda/ops: element loads and stores of f32 / bf16 /
// f16 operands, warp and block reductions, and float operations with explicit rounding (no
// contraction into fused multiply-adds where a result must match the host bit for bit).
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_COMMON_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_COMMON_CUH_

#include <cstdint>

#include "kernels/cuda/device.h"
#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// a * b and a + b rounded separately (never fused), as the host computes them.
#if defined(SPARKSTACK_CUDA_EMULATION)
inline float MulRn(float a, float b) { return a * b; }
inline float AddRn(float a, float b) { return a + b; }
inline float SubRn(float a, float b) { return a - b; }
inline float DivRn(float a, float b) { return a / b; }
#else
__device__ __forceinline__ float MulRn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float AddRn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float SubRn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float DivRn(float a, float b) { return __fdiv_rn(a, b); }
#endif

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024 threads), returned to every
// thread. `scratch` holds 32 floats of shared memory; the call ends with a barrier, so it may be
// reused right away.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  v = WarpSum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < warps; ++w) total += scratch[w];  // same order in every thread
  __syncthreads();
  return total;
}

__device__ __forceinline__ double WarpSum(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// BlockSum for doubles; `scratch` holds 32 doubles of shared memory.
__device__ __forceinline__ double BlockSum(double v, double* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  v = WarpSum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < warps; ++w) total += scratch[w];
  __syncthreads();
  return total;
}

__device__ __forceinline__ int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_COMMON_CUH_
