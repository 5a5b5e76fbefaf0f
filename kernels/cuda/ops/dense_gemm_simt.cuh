// Dense GEMM on CUDA cores for f32 / f16 weights and larger m: y = x . W^T, exact f32 products
// and f32 accumulation.
//
// Block tile 64 x 64 outputs, k in slices of 16; 256 threads, each computing a 4 x 4 micro-tile
// (rows ty + 16 i, columns tx + 16 j, so that a warp's shared reads are broadcasts or consecutive).
// Shared memory holds the slice transposed: xs[16][68], ws[16][68] f32 (k-major, padded), loaded
// with plain global loads (any alignment); out-of-range elements are zeros.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_DENSE_GEMM_SIMT_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_DENSE_GEMM_SIMT_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"
#include "kernels/cuda/ops/dense_linear.h"
#include "kernels/cuda/shared_memory.h"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kSimtTile = 64;
inline constexpr int kSimtBK = 16;
inline constexpr int kSimtRow = kSimtTile + 4;
inline constexpr int kSimtThreads = 256;
static_assert(2 * kSimtBK * kSimtRow * 4 == kDenseGemmSimtSmemBytes);

template <typename T>
__global__ void __launch_bounds__(kSimtThreads) DenseGemmSimtKernel(DenseLinearArgs a) {
  SPARKSTACK_SHARED_ARRAY(float, xs, kSimtBK * kSimtRow);
  SPARKSTACK_SHARED_ARRAY(float, ws, kSimtBK * kSimtRow);
  const int tid = threadIdx.x;
  const int tx = tid & 15;  // column group
  const int ty = tid >> 4;  // row group
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kSimtTile;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kSimtTile;
  const T* w = static_cast<const T*>(a.w);
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  }
  for (int64_t k0 = 0; k0 < a.k; k0 += kSimtBK) {
    // 64 rows x 16 k of each operand: 4 elements per thread; consecutive threads read
    // consecutive k of a row.
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int c = tid + e * kSimtThreads;
      const int row = c >> 4;
      const int kk = c & 15;
      const int64_t gk = k0 + kk;
      const int64_t gm = m0 + row;
      const int64_t gn = n0 + row;
      xs[kk * kSimtRow + row] = gm < a.m && gk < a.k ? a.x[gm * a.ldx + gk] : 0.0f;
      ws[kk * kSimtRow + row] = gn < a.n && gk < a.k ? ToFloat(w[gn * a.ldw + gk]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kSimtBK; ++kk) {
      float xv[4], wv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) xv[i] = xs[kk * kSimtRow + ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) wv[j] = ws[kk * kSimtRow + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += xv[i] * wv[j];
      }
    }
    cuda::ReleaseSharedAtNextBarrier(xs, sizeof(float) * kSimtBK * kSimtRow);
    cuda::ReleaseSharedAtNextBarrier(ws, sizeof(float) * kSimtBK * kSimtRow);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t row = m0 + ty + 16 * i;
      const int64_t col = n0 + tx + 16 * j;
      if (row < a.m && col < a.n) a.y[row * a.ldy + col] = acc[i][j];
    }
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_DENSE_GEMM_SIMT_CUH_
