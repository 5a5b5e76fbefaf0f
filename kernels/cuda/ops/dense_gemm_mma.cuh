// Dense bf16-weight GEMM on tensor cores (sm_80+): y[m, n] = x[m, k] . W[n, k]^T with x f32 in
// global memory, rounded to bf16 on its way into shared memory, W bf16, mma.sync m16n8k16 with f32
// accumulation.
//
// Block tile BM = 64 rows of x by BN = 128 weight rows, k in slices of BK = 32. 256 threads = 8
// warps laid out 2 (m) x 4 (n); warp (wm, wn) owns a 32 x 32 sub-tile = MI 2 x NI 4 mma tiles.
// Shared memory (static, kDenseGemmMmaSmemBytes): xs[BM][40] and ws[BN][40] bf16, rows padded
// from 32 to 40 elements (80 bytes) so that the 8 row addresses of an ldmatrix hit distinct banks.
// The next k-slice is loaded into registers while the tensor cores work on the current one, then
// stored after a barrier (single shared buffer, register double buffering). Loads are plain
// global loads, vectorized when rows are 16-byte aligned, so any k, ldx and ldw work; elements
// past m, n or k are zeros and add nothing.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_DENSE_GEMM_MMA_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_DENSE_GEMM_MMA_CUH_

#include <cstdint>

#include "kernels/cuda/ldmatrix.h"
#include "kernels/cuda/mma.h"
#include "kernels/cuda/ops/common.cuh"
#include "kernels/cuda/ops/dense_linear.h"
#include "kernels/cuda/shared_memory.h"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kMmaBM = 64;
inline constexpr int kMmaBN = 128;
inline constexpr int kMmaBK = 32;
inline constexpr int kMmaRow = kMmaBK + 8;  // padded shared row, elements
inline constexpr int kMmaThreads = 256;
static_assert((kMmaBM + kMmaBN) * kMmaRow * 2 == kDenseGemmMmaSmemBytes);

__device__ __forceinline__ uint32_t PackBf16Pair(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// kVec: x rows and W rows are 16-byte aligned and k % 8 == 0, so whole 8-element chunks load
// with vector loads.
template <bool kVec>
__global__ void __launch_bounds__(kMmaThreads) DenseGemmMmaKernel(DenseLinearArgs a) {
  constexpr int WM = kMmaBM / 2;
  constexpr int WN = kMmaBN / 4;
  constexpr int MI = WM / 16;
  constexpr int NI = WN / 8;
  SPARKSTACK_SHARED_ARRAY(__nv_bfloat16, xs, kMmaBM * kMmaRow);
  SPARKSTACK_SHARED_ARRAY(__nv_bfloat16, ws, kMmaBN * kMmaRow);

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wm = warp >> 2;
  const int wn = warp & 3;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kMmaBM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kMmaBN;
  const auto* w = static_cast<const __nv_bfloat16*>(a.w);

  // Per k-slice a thread moves one 8-element chunk of x (64 rows x 4 chunks) and two of W
  // (128 rows x 4 chunks), as packed bf16 pairs.
  uint32_t xreg[4];
  uint32_t wreg[2][4];
  auto load = [&](int64_t k0) {
    {
      const int row = tid >> 2;
      const int col = (tid & 3) * 8;
      const int64_t gm = m0 + row;
      const int64_t gk = k0 + col;
      float v[8];
      if (kVec && gm < a.m && gk < a.k) {
        const float4 lo = *reinterpret_cast<const float4*>(a.x + gm * a.ldx + gk);
        const float4 hi = *reinterpret_cast<const float4*>(a.x + gm * a.ldx + gk + 4);
        v[0] = lo.x, v[1] = lo.y, v[2] = lo.z, v[3] = lo.w;
        v[4] = hi.x, v[5] = hi.y, v[6] = hi.z, v[7] = hi.w;
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          v[j] = gm < a.m && gk + j < a.k ? a.x[gm * a.ldx + gk + j] : 0.0f;
        }
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) xreg[j] = PackBf16Pair(v[2 * j], v[2 * j + 1]);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int c = tid + h * kMmaThreads;
      const int row = c >> 2;
      const int col = (c & 3) * 8;
      const int64_t gn = n0 + row;
      const int64_t gk = k0 + col;
      if (kVec && gn < a.n && gk < a.k) {
        const uint4 raw = *reinterpret_cast<const uint4*>(w + gn * a.ldw + gk);
        wreg[h][0] = raw.x, wreg[h][1] = raw.y, wreg[h][2] = raw.z, wreg[h][3] = raw.w;
      } else {
        uint16_t e[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          e[j] = gn < a.n && gk + j < a.k
                     ? *reinterpret_cast<const uint16_t*>(w + gn * a.ldw + gk + j)
                     : uint16_t{0};
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          wreg[h][j] = static_cast<uint32_t>(e[2 * j]) | (static_cast<uint32_t>(e[2 * j + 1]) << 16);
        }
      }
    }
  };
  auto store = [&]() {
    {
      const int row = tid >> 2;
      const int col = (tid & 3) * 8;
      *reinterpret_cast<uint4*>(xs + row * kMmaRow + col) =
          make_uint4(xreg[0], xreg[1], xreg[2], xreg[3]);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int c = tid + h * kMmaThreads;
      const int row = c >> 2;
      const int col = (c & 3) * 8;
      *reinterpret_cast<uint4*>(ws + row * kMmaRow + col) =
          make_uint4(wreg[h][0], wreg[h][1], wreg[h][2], wreg[h][3]);
    }
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i) {
#pragma unroll
    for (int j = 0; j < NI; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    }
  }

  const int64_t ktiles = (a.k + kMmaBK - 1) / kMmaBK;
  load(0);
  store();
  __syncthreads();
  for (int64_t kt = 0; kt < ktiles; ++kt) {
    if (kt + 1 < ktiles) load((kt + 1) * kMmaBK);
#pragma unroll
    for (int kk = 0; kk < kMmaBK / 16; ++kk) {
      uint32_t af[MI][4];
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        const int row = wm * WM + i * 16 + (lane & 15);
        cuda::LdMatrix<4>(af[i], xs + row * kMmaRow + kk * 16 + (lane >> 4) * 8);
      }
      uint32_t bf[NI][2];
#pragma unroll
      for (int j = 0; j < NI; j += 2) {
        const int q = lane >> 3;
        const int nrow = wn * WN + (j + (q >> 1)) * 8 + (lane & 7);
        uint32_t r[4];
        cuda::LdMatrix<4>(r, ws + nrow * kMmaRow + kk * 16 + (q & 1) * 8);
        bf[j][0] = r[0];
        bf[j][1] = r[1];
        bf[j + 1][0] = r[2];
        bf[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < MI; ++i) {
#pragma unroll
        for (int j = 0; j < NI; ++j) cuda::MmaM16N8K16Bf16(acc[i][j], af[i], bf[j]);
      }
    }
    if (kt + 1 < ktiles) {
      cuda::ReleaseSharedAtNextBarrier(xs, sizeof(__nv_bfloat16) * kMmaBM * kMmaRow);
      cuda::ReleaseSharedAtNextBarrier(ws, sizeof(__nv_bfloat16) * kMmaBN * kMmaRow);
      __syncthreads();
      store();
      __syncthreads();
    }
  }

  // Accumulator fragment: c0, c1 = (row g, cols 2t, 2t+1), c2, c3 = (row g + 8, same cols).
  const int g = lane >> 2;
  const int t = lane & 3;
#pragma unroll
  for (int i = 0; i < MI; ++i) {
#pragma unroll
    for (int j = 0; j < NI; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t row = m0 + wm * WM + i * 16 + g + (e >> 1) * 8;
        const int64_t col = n0 + wn * WN + j * 8 + 2 * t + (e & 1);
        if (row < a.m && col < a.n) a.y[row * a.ldy + col] = acc[i][j][e];
      }
    }
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_DENSE_GEMM_MMA_CUH_
