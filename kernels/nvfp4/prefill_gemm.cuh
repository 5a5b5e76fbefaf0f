// W4A16 prefill GEMM on tensor cores (sm_80+): y[m, n] = sum_k x[m, k] * W[n, k].
//
// Block tile BM (rows of x) x BN (= 128 weight rows), k sliced by BK = 64. 256 threads = 8 warps
// laid out 2 along m x 4 along n; warp (wm, wn) owns rows wm * BM/2 .. and columns wn * 32 ..,
// i.e. MI = BM/32 x NI = 4 mma tiles of m16n8k16 (bf16 in, f32 accumulate).
//
// Shared memory (dynamic, PrefillSmemBytes in launch_config.h), all offsets 16-byte aligned:
//   xs[STAGES][BM][72]  bf16  x tile, rows padded 64 -> 72 elements (144 B) so that the 8 row
//                             addresses of an ldmatrix fall in distinct banks
//   cs[STAGES][BN][32]  u8    raw codes of the weight tile (64 elements = 32 bytes per row)
//   ss[STAGES][BN][4]   u8    the four E4M3 block scales of each weight row
//   ws[BN][72]          bf16  dequantized weight tile (code * scale * 2^-22, exact in bf16)
// Pipeline, per k-tile kt (STAGES-deep cp.async ring; one commit group per tile, empty groups
// keep the count uniform):
//   wait until tile kt landed; __syncthreads          (tile kt visible; iteration kt-1 done: ws
//                                                       and stage (kt-1) % STAGES are released)
//   dequantize stage kt % STAGES into ws               (each thread: 1 weight row half = 32 codes)
//   issue the loads of tile kt + STAGES - 1 into the stage that iteration kt-1 used
//   __syncthreads                                      (ws complete)
//   4 k16 steps: ldmatrix x (A, row-major) and ws (B: rows are n, k contiguous = "col"), mma
// Out-of-range rows of x or W and the k tail (k % 64 != 0) are zero-filled by cp.async's
// src-size operand, so they add exact zeros. The epilogue multiplies by global * 2^22.
#ifndef SPARKSTACK_KERNELS_NVFP4_PREFILL_GEMM_CUH_
#define SPARKSTACK_KERNELS_NVFP4_PREFILL_GEMM_CUH_

#include <cstdint>

#include "kernels/cuda/cp_async.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/ldmatrix.h"
#include "kernels/cuda/mma.h"
#include "kernels/cuda/shared_memory.h"
#include "kernels/nvfp4/dequant.cuh"
#include "kernels/nvfp4/launch_config.h"

namespace sparkstack::kernels::nvfp4::detail {

__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <int BM, int BN, int STAGES, typename OutT>
__global__ void __launch_bounds__(kPrefillThreads) PrefillGemmKernel(GemmArgs a) {
  constexpr int BK = kPrefillBK;
  constexpr int ROW = BK + kPrefillSmemPad;  // padded row, elements
  constexpr int WM = BM / 2;
  constexpr int WN = BN / 4;
  constexpr int MI = WM / 16;
  constexpr int NI = WN / 8;
  static_assert(BN == 128, "the dequantization mapping gives each thread half a row of 128");
  static_assert(BM % 32 == 0 && BM >= 32 && NI % 2 == 0);
  static_assert(kPrefillThreads == 256);

  auto* xs = cuda::DynamicSharedMemory<__nv_bfloat16>();
  auto* cs = reinterpret_cast<uint8_t*>(xs + STAGES * BM * ROW);
  auto* ss = cs + STAGES * BN * (BK / 2);
  auto* ws = reinterpret_cast<__nv_bfloat16*>(ss + STAGES * BN * (BK / kBlockSize));

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wm = warp >> 2;  // 0..1
  const int wn = warp & 3;   // 0..3
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const auto* x = static_cast<const __nv_bfloat16*>(a.x);
  const int64_t kblocks = a.k / kBlockSize;
  const bool scales_vec4 = a.lds % 4 == 0 && reinterpret_cast<uintptr_t>(a.scales) % 4 == 0;

  auto load_tile = [&](int stage, int kt) {
    const int64_t k0 = static_cast<int64_t>(kt) * BK;
    // x: BM rows x 8 chunks of 8 bf16.
#pragma unroll
    for (int i = 0; i < BM * 8 / kPrefillThreads; ++i) {
      const int c = tid + i * kPrefillThreads;
      const int row = c >> 3;
      const int col = (c & 7) * 8;
      const int64_t gm = m0 + row;
      const int64_t gk = k0 + col;
      const bool valid = gm < a.m && gk < a.k;  // k % 16 == 0: a chunk is all in or all out
      cuda::CpAsync<16>(xs + (stage * BM + row) * ROW + col, valid ? x + gm * a.ldx + gk : x,
                        valid ? 16 : 0);
    }
    // codes: BN rows x 4 pieces of 8 bytes (16 elements, one block each).
#pragma unroll
    for (int i = 0; i < BN * 4 / kPrefillThreads; ++i) {
      const int c = tid + i * kPrefillThreads;
      const int row = c >> 2;
      const int piece = c & 3;
      const int64_t gn = n0 + row;
      const int64_t gk = k0 + piece * 16;
      const bool valid = gn < a.n && gk < a.k;
      cuda::CpAsync<8>(cs + (stage * BN + row) * (BK / 2) + piece * 8,
                       valid ? a.codes + gn * a.ldw + gk / 2 : a.codes, valid ? 8 : 0);
    }
    // scales: BN rows x 4 bytes.
    if (tid < BN) {
      const int row = tid;
      const int64_t gn = n0 + row;
      const int64_t b0 = k0 / kBlockSize;
      const int64_t left = kblocks - b0;  // >= 1 for every tile that exists
      const int count = gn < a.n ? static_cast<int>(left < 4 ? left : 4) : 0;
      uint8_t* dst = ss + (stage * BN + row) * 4;
      const uint8_t* src = count > 0 ? a.scales + gn * a.lds + b0 : a.scales;
      if (scales_vec4) {
        cuda::CpAsync<4>(dst, src, count);
      } else {
        // Unaligned scale rows (k / 16 not a multiple of 4): plain loads. Ordinary shared
        // stores, made visible by the __syncthreads before the tile is dequantized.
#pragma unroll
        for (int j = 0; j < 4; ++j) dst[j] = j < count ? __ldg(src + j) : uint8_t{0};
      }
    }
  };

  auto dequantize = [&](int stage) {
    const int row = tid >> 1;
    const int half = tid & 1;
    const uint4 raw =
        *reinterpret_cast<const uint4*>(cs + (stage * BN + row) * (BK / 2) + half * 16);
    const uint8_t* srow = ss + (stage * BN + row) * 4 + half * 2;
    const float scale[2] = {DecodeScaleTimes2m8(srow[0]), DecodeScaleTimes2m8(srow[1])};
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
    uint4* dst = reinterpret_cast<uint4*>(ws + row * ROW + half * 32);
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      float v[8];
      DecodeWordTimes2m14(words[w], v);
      const float s = scale[w / 2];
      uint4 out;
      out.x = PackBf16(v[0] * s, v[1] * s);
      out.y = PackBf16(v[2] * s, v[3] * s);
      out.z = PackBf16(v[4] * s, v[5] * s);
      out.w = PackBf16(v[6] * s, v[7] * s);
      dst[w] = out;
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

  const int ktiles = static_cast<int>((a.k + BK - 1) / BK);
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ktiles) load_tile(s, s);
    cuda::CpAsyncCommitGroup();
  }

  for (int kt = 0; kt < ktiles; ++kt) {
    cuda::CpAsyncWaitGroup<STAGES - 2>();
    if (kt > 0) {
      // This barrier ends iteration kt-1's reads of ws and of stage (kt-1) % STAGES, which the
      // loads issued below refill with tile kt + STAGES - 1.
      const int done = (kt - 1) % STAGES;
      cuda::ReleaseSharedAtNextBarrier(ws, sizeof(__nv_bfloat16) * BN * ROW);
      cuda::ReleaseSharedAtNextBarrier(xs + done * BM * ROW, sizeof(__nv_bfloat16) * BM * ROW);
      cuda::ReleaseSharedAtNextBarrier(cs + done * BN * (BK / 2), BN * (BK / 2));
      cuda::ReleaseSharedAtNextBarrier(ss + done * BN * (BK / kBlockSize), BN * (BK / kBlockSize));
    }
    __syncthreads();
    const int stage = kt % STAGES;
    dequantize(stage);
    const int next = kt + STAGES - 1;
    if (next < ktiles) load_tile(next % STAGES, next);
    cuda::CpAsyncCommitGroup();
    __syncthreads();

    const __nv_bfloat16* xtile = xs + stage * BM * ROW;
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t af[MI][4];
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        // Matrices: (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15,
        // k 8-15) = a0..a3 of the m16n8k16 A fragment. Lane l addresses row l & 15, k half l >> 4.
        const int row = wm * WM + i * 16 + (lane & 15);
        cuda::LdMatrix<4>(af[i], xtile + row * ROW + kk * 16 + (lane >> 4) * 8);
      }
      uint32_t bf[NI][2];
#pragma unroll
      for (int j = 0; j < NI; j += 2) {
        // Matrices: (n tile j, k 0-7), (tile j, k 8-15), (tile j+1, k 0-7), (tile j+1, k 8-15).
        const int q = lane >> 3;
        const int nrow = wn * WN + (j + (q >> 1)) * 8 + (lane & 7);
        uint32_t r[4];
        cuda::LdMatrix<4>(r, ws + nrow * ROW + kk * 16 + (q & 1) * 8);
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
  }
  cuda::CpAsyncWaitGroup<0>();  // no copy may still target shared memory when the block exits

  // Accumulator fragment: c0, c1 = (row g, cols 2t, 2t+1), c2, c3 = (row g + 8, same cols).
  const float alpha = a.global_scale * kDequantCorrection;
  OutT* y = static_cast<OutT*>(a.y);
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
        if (row < a.m && col < a.n) StoreOut(y + row * a.ldy + col, acc[i][j][e] * alpha);
      }
    }
  }
}

}  // namespace sparkstack::kernels::nvfp4::detail

#endif  // SPARKSTACK_KERNELS_NVFP4_PREFILL_GEMM_CUH_
