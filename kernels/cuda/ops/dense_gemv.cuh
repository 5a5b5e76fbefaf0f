// Dense GEMV / skinny GEMM for decode: y[m, n] = x[m, k] . W[n, k]^T, f32 x and accumulation.
//
// Thread mapping: 4 warps per block; warp w of block b owns the kRows = 2 weight rows starting at
// (b * 4 + w) * 2 and the MT activation rows of its m-tile (grid y). Lane l reads elements
// l * V + 32 * V * i of each weight row (V = 16 bytes of weights per load when the rows are
// 16-byte aligned, else V = 1), so a warp streams contiguous weight bytes; the x values of a chunk
// come from L1 (x is small and read by every warp) and serve both rows. Partial sums are reduced
// across the warp with shuffles.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_DENSE_GEMV_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_DENSE_GEMV_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"
#include "kernels/cuda/ops/dense_linear.h"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kGemvWarps = 4;
inline constexpr int kGemvRows = 2;  // weight rows per warp
inline constexpr int kGemvThreads = kGemvWarps * 32;
inline constexpr int kGemvRowsPerBlock = kGemvWarps * kGemvRows;

// V consecutive weights of a row as floats (one 16-byte load when V > 1).
template <typename T, int V>
__device__ __forceinline__ void LoadWeights(const T* p, float (&w)[V]) {
  if constexpr (V == 1) {
    w[0] = ToFloat(*p);
  } else {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < V; ++i) w[i] = ToFloat(e[i]);
  }
}

template <typename T, int MT, int V>
__global__ void __launch_bounds__(kGemvThreads) DenseGemvKernel(DenseLinearArgs a) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * kGemvWarps + warp) * kGemvRows;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * MT;
  const T* w = static_cast<const T*>(a.w);
  float acc[MT][kGemvRows];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int r = 0; r < kGemvRows; ++r) acc[i][r] = 0.0f;
  }
  // Rows past n and m are clamped to valid ones and never stored, so every lane runs the same
  // loop (the reduction below needs all 32 lanes).
  const T* rows[kGemvRows];
#pragma unroll
  for (int r = 0; r < kGemvRows; ++r) {
    const int64_t n = row0 + r < a.n ? row0 + r : a.n - 1;
    rows[r] = w + n * a.ldw;
  }
  for (int64_t c = static_cast<int64_t>(lane) * V; c < a.k; c += 32 * V) {
    float wv[kGemvRows][V];
#pragma unroll
    for (int r = 0; r < kGemvRows; ++r) LoadWeights<T, V>(rows[r] + c, wv[r]);
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      const int64_t mi = m0 + i < a.m ? m0 + i : a.m - 1;
      const float* xr = a.x + mi * a.ldx + c;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const float xv = xr[j];
#pragma unroll
        for (int r = 0; r < kGemvRows; ++r) acc[i][r] += xv * wv[r][j];
      }
    }
  }
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int r = 0; r < kGemvRows; ++r) {
      const float sum = WarpSum(acc[i][r]);
      if (lane == 0 && m0 + i < a.m && row0 + r < a.n) a.y[(m0 + i) * a.ldy + row0 + r] = sum;
    }
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_DENSE_GEMV_CUH_
