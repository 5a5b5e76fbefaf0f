// W4A16 decode GEMV / skinny GEMM kernel: y[m, n] = sum_k x[m, k] * W[n, k].
//
// Mapping (see launch_config.h for the constants):
//   grid.x covers n in steps of kDecodeRowsPerBlock; grid.y covers m in steps of MT.
//   Warp w of block b owns weight rows row0 = (b * kDecodeWarps + w) * R .. row0 + R - 1 (R =
//   kDecodeRowsPerWarp) and the MT activations m0 = blockIdx.y * MT ...
//   The k axis is cut into "vectors" of NW 32-bit words of codes (NW = 4: 16 bytes = 32 elements =
//   2 block scales; NW = 2: 8 bytes = 16 elements = 1 block scale). Lane l handles vectors l,
//   l + 32, ..., kUnroll vectors per row at a time so that R * kUnroll independent loads are in
//   flight per lane before the first use. Every weight byte is loaded exactly once.
//   For each vector the lane decodes the R rows' codes to floats (times 2^-14), then for each m
//   loads the matching x values (bf16, through L1: x is shared by all warps), forms per-block
//   partial dot products and adds partial * block_scale to acc[m][r].
//   With NW = 4 and k % 32 == 16, the last 16 elements of each row (one 8-byte half vector) are
//   handled by lane 0 after the main loop.
//   Finally acc is reduced across the warp (xor shuffles) and lane 0 writes
//   y = acc * global_scale * 2^22 (the 2^22 undoes the decode scalings of dequant.cuh).
// Accumulation is f32 throughout; products of decoded codes, scales and x are exact in f32.
#ifndef SPARKSTACK_KERNELS_NVFP4_DECODE_GEMV_CUH_
#define SPARKSTACK_KERNELS_NVFP4_DECODE_GEMV_CUH_

#include <cstdint>

#include "kernels/cuda/device.h"
#include "kernels/cuda/global_memory.h"
#include "kernels/nvfp4/dequant.cuh"
#include "kernels/nvfp4/launch_config.h"

namespace sparkstack::kernels::nvfp4::detail {

inline constexpr int kDecodeUnroll = 2;

// Adds the contribution of one vector (NW words of codes per row, NW / 2 block scales per row) to
// acc. `x` points at element `kelem` of activation row m0; rows beyond m_count are skipped.
template <int MT, int R, int NW>
__device__ __forceinline__ void DecodeAccumulateVector(const uint32_t (&words)[R][NW],
                                                       const float (&scale)[R][NW / 2],
                                                       const __nv_bfloat16* x, int64_t ldx,
                                                       int m_count, float (&acc)[MT][R]) {
  float w[R][NW * 8];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int i = 0; i < NW; ++i) {
      float v[8];
      DecodeWordTimes2m14(words[r][i], v);
#pragma unroll
      for (int e = 0; e < 8; ++e) w[r][8 * i + e] = v[e];
    }
  }
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    if (m < m_count) {
      const uint4* xv = reinterpret_cast<const uint4*>(x + m * ldx);
      float part[R][NW / 2];
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int b = 0; b < NW / 2; ++b) part[r][b] = 0.0f;
      }
#pragma unroll
      for (int i = 0; i < NW; ++i) {
        const uint4 q = __ldg(xv + i);  // elements 8i .. 8i+7 of the vector
        const float xf[8] = {Bf16Lo(q.x), Bf16Hi(q.x), Bf16Lo(q.y), Bf16Hi(q.y),
                             Bf16Lo(q.z), Bf16Hi(q.z), Bf16Lo(q.w), Bf16Hi(q.w)};
#pragma unroll
        for (int r = 0; r < R; ++r) {
#pragma unroll
          for (int e = 0; e < 8; ++e) part[r][i / 2] = fmaf(w[r][8 * i + e], xf[e], part[r][i / 2]);
        }
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int b = 0; b < NW / 2; ++b) acc[m][r] = fmaf(part[r][b], scale[r][b], acc[m][r]);
      }
    }
  }
}

// Min. 1 block per SM: with only the thread count ptxas capped some instances at 72-128 registers
// and spilled (sm_90, sm_121a); one warp's 2 x R loads of 16 bytes per lane in flight keep the
// memory system busy at low occupancy, so registers are worth more than resident blocks here.
template <int MT, bool kVec16, typename OutT>
__global__ void __launch_bounds__(kDecodeThreads, 1) DecodeGemvKernel(GemmArgs a) {
  constexpr int R = kDecodeRowsPerWarp;
  constexpr int NW = kVec16 ? 4 : 2;
  constexpr int kVecBytes = 4 * NW;
  constexpr int kVecElems = 8 * NW;
  constexpr int NB = NW / 2;

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * kDecodeWarps + warp) * R;
  if (row0 >= a.n) return;  // whole warp out of range (warp-uniform)
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * MT;
  const int m_count = static_cast<int>(a.m - m0 < MT ? a.m - m0 : MT);

  const __nv_bfloat16* x = static_cast<const __nv_bfloat16*>(a.x) + m0 * a.ldx;
  const uint8_t* code_rows[R];
  const uint8_t* scale_rows[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t row = row0 + r < a.n ? row0 + r : a.n - 1;  // clamp: loads stay in bounds
    code_rows[r] = a.codes + row * a.ldw;
    scale_rows[r] = a.scales + row * a.lds;
  }

  float acc[MT][R];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int r = 0; r < R; ++r) acc[m][r] = 0.0f;
  }

  const int64_t nvec = a.k / kVecElems;
  for (int64_t v0 = lane; v0 < nvec; v0 += 32 * kDecodeUnroll) {
    uint32_t words[kDecodeUnroll][R][NW];
    float scale[kDecodeUnroll][R][NB];
    // Issue every load of this step before decoding any of them.
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int64_t v = v0 + 32 * u;
      const bool valid = v < nvec;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if constexpr (kVec16) {
          const uint4 q = valid ? cuda::LoadGlobalStreaming16(code_rows[r] + v * kVecBytes)
                                : make_uint4(0, 0, 0, 0);
          words[u][r][0] = q.x;
          words[u][r][1] = q.y;
          words[u][r][2] = q.z;
          words[u][r][3] = q.w;
        } else {
          const uint2 q =
              valid ? cuda::LoadGlobalStreaming8(code_rows[r] + v * kVecBytes) : make_uint2(0, 0);
          words[u][r][0] = q.x;
          words[u][r][1] = q.y;
        }
#pragma unroll
        for (int b = 0; b < NB; ++b) {
          scale[u][r][b] = valid ? DecodeScaleTimes2m8(__ldg(scale_rows[r] + v * NB + b)) : 0.0f;
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int64_t v = v0 + 32 * u;
      if (v < nvec) {
        DecodeAccumulateVector<MT, R, NW>(words[u], scale[u], x + v * kVecElems, a.ldx, m_count,
                                          acc);
      }
    }
  }

  if constexpr (kVec16) {
    // k % 32 == 16: one trailing 8-byte half vector (16 elements, one block) per row.
    if (a.k % 32 != 0 && lane == 0) {
      uint32_t words[R][2];
      float scale[R][1];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const uint2 q = cuda::LoadGlobalStreaming8(code_rows[r] + nvec * 16);
        words[r][0] = q.x;
        words[r][1] = q.y;
        scale[r][0] = DecodeScaleTimes2m8(__ldg(scale_rows[r] + nvec * 2));
      }
      DecodeAccumulateVector<MT, R, 2>(words, scale, x + nvec * 32, a.ldx, m_count, acc);
    }
  }

#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int offset = 16; offset > 0; offset >>= 1) {
        acc[m][r] += __shfl_xor_sync(0xffffffffu, acc[m][r], offset);
      }
    }
  }
  if (lane == 0) {
    const float alpha = a.global_scale * kDequantCorrection;
    OutT* y = static_cast<OutT*>(a.y);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (m < m_count && row0 + r < a.n) {
          StoreOut(y + (m0 + m) * a.ldy + row0 + r, acc[m][r] * alpha);
        }
      }
    }
  }
}

}  // namespace sparkstack::kernels::nvfp4::detail

#endif  // SPARKSTACK_KERNELS_NVFP4_DECODE_GEMV_CUH_
