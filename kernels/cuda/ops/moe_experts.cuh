// Grouped MoE kernels (moe_experts.h).
//
// Plan: one block of kMoePlanThreads; thread e counts the slots of local expert e (a scan over all
// slots), thread 0 turns the counts into offsets, then thread e writes its rows in increasing slot
// order. O(local * slots / threads), no atomics, deterministic.
//
// Expert linear (gate and up together, or down): grid (ceil(n / 8), ceil(max_rows / kMoeRowTile)),
// 4 warps; warp w of block b owns weight rows (b * 4 + w) * 2 + {0, 1} (and the same rows of up),
// and the block's row tile [y * kMoeRowTile, +kMoeRowTile) of the expert's rows, in chunks of
// kMoeRowChunk rows held in registers. Lane l reads weight elements 8l + 256i of its rows (dense:
// element loads; NVFP4: one 4-byte word of 8 codes and their block scale, decoded exactly with the
// shared bit tricks of kernels/nvfp4/dequant.cuh); the activations come from L1. Partial sums are
// reduced across the warp with shuffles.
//
// Combine: grid (tokens), 128 threads over the hidden elements.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_MOE_EXPERTS_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_MOE_EXPERTS_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"
#include "kernels/cuda/ops/moe_experts.h"
#include "kernels/nvfp4/dequant.cuh"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kMoePlanThreads = 256;
inline constexpr int kMoeLinearWarps = 4;
inline constexpr int kMoeLinearRows = 2;  // weight rows per warp
inline constexpr int kMoeLinearThreads = kMoeLinearWarps * 32;
inline constexpr int kMoeLinearRowsPerBlock = kMoeLinearWarps * kMoeLinearRows;
inline constexpr int kMoeRowChunk = 4;  // activation rows per register chunk
inline constexpr int kMoeChunk = 8;     // weight elements per lane and step

// 32-bit indices: the launcher checks tokens * top_k < 2^31.
__global__ void __launch_bounds__(kMoePlanThreads)
    MoePlanKernel(const int32_t* ids, int tokens, int top_k, int first, int local, int32_t* offsets,
                  int32_t* perm, int32_t* slot_row) {
  const int slots = tokens * top_k;
  for (int s = threadIdx.x; s < slots; s += blockDim.x) {
    const int e = ids[s] - first;
    if (e < 0 || e >= local) slot_row[s] = -1;
  }
  for (int e = threadIdx.x; e < local; e += blockDim.x) {
    int count = 0;
    for (int s = 0; s < slots; ++s) count += ids[s] - first == e ? 1 : 0;
    offsets[e + 1] = count;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    offsets[0] = 0;
    for (int e = 0; e < local; ++e) offsets[e + 1] += offsets[e];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < local; e += blockDim.x) {
    int row = offsets[e];
    for (int t = 0, s = 0; t < tokens; ++t) {
      for (int j = 0; j < top_k; ++j, ++s) {
        if (ids[s] - first != e) continue;
        perm[row] = t;
        slot_row[s] = row;
        ++row;
      }
    }
  }
}

// One weight row, dense.
template <typename T>
struct DenseRow {
  const T* p;
  int64_t k;
  __device__ __forceinline__ DenseRow() : p(nullptr), k(0) {}
  __device__ __forceinline__ DenseRow(const MoeWeightView& v, int64_t n)
      : p(static_cast<const T*>(v.data) + n * v.ld), k(v.k) {}
  __device__ __forceinline__ void Load(int64_t c, float (&w)[kMoeChunk]) const {
#pragma unroll
    for (int j = 0; j < kMoeChunk; ++j) w[j] = c + j < k ? ToFloat(p[c + j]) : 0.0f;
  }
  __device__ __forceinline__ float Finish(float acc) const { return acc; }
};

// One weight row, NVFP4 (k a multiple of 16, so a chunk of 8 never straddles a scale block).
struct Nvfp4Row {
  const uint8_t* codes;
  const uint8_t* scales;
  float global_scale;
  __device__ __forceinline__ Nvfp4Row() : codes(nullptr), scales(nullptr), global_scale(0.0f) {}
  __device__ __forceinline__ Nvfp4Row(const MoeWeightView& v, int64_t n)
      : codes(static_cast<const uint8_t*>(v.data) + n * v.ld),
        scales(v.scales + n * v.ld_scales),
        global_scale(v.global_scale) {}
  __device__ __forceinline__ void Load(int64_t c, float (&w)[kMoeChunk]) const {
    const uint8_t* b = codes + c / 2;
    const uint32_t q = static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) |
                       (static_cast<uint32_t>(b[2]) << 16) | (static_cast<uint32_t>(b[3]) << 24);
    nvfp4::detail::DecodeWordTimes2m14(q, w);
    const float s = nvfp4::detail::DecodeScaleTimes2m8(scales[c / 16]);
#pragma unroll
    for (int j = 0; j < kMoeChunk; ++j) w[j] = MulRn(w[j], s);  // exact: 3 x 4 mantissa bits
  }
  __device__ __forceinline__ float Finish(float acc) const {
    return MulRn(MulRn(acc, nvfp4::detail::kDequantCorrection), global_scale);
  }
};

struct MoeLinearArgs {
  const float* in = nullptr;  // x (gathered through perm) or h
  int64_t ld_in = 0;
  const int32_t* perm = nullptr;  // non-null: input row r is in[perm[r]]
  const int32_t* offsets = nullptr;
  int64_t expert = 0;
  MoeWeightView w0;       // gate or down
  MoeWeightView w1;       // up (kPair only)
  float* out0 = nullptr;  // w0 · in
  float* out1 = nullptr;  // w1 · in (kPair only)
  int64_t ld_out = 0;
};

// out0 = w0 · in and, with kPair, out1 = w1 · in (gate and up in one pass over the activations).
// SwiGLU is a separate element-wise pass: its IEEE division is a subroutine call that would make
// this kernel spill on sm_121a.
template <typename Row, bool kPair>
__global__ void __launch_bounds__(kMoeLinearThreads) MoeLinearKernel(MoeLinearArgs a) {
  const int64_t begin = a.offsets[a.expert];
  const int64_t count = a.offsets[a.expert + 1] - begin;
  const int64_t tile = static_cast<int64_t>(blockIdx.y) * kMoeRowTile;
  if (tile >= count) return;  // an idle tile: the expert has fewer rows this call
  const int64_t tile_end = tile + kMoeRowTile < count ? tile + kMoeRowTile : count;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t n0 = (static_cast<int64_t>(blockIdx.x) * kMoeLinearWarps + warp) * kMoeLinearRows;
  constexpr int kMats = kPair ? 2 : 1;
  // Rows past n are clamped to valid ones and never stored, so every lane runs the same loop.
  const int64_t n_rows = a.w0.n;
  Row rows[kMats][kMoeLinearRows];
  for (int r = 0; r < kMoeLinearRows; ++r) {
    const int64_t n = n0 + r < n_rows ? n0 + r : n_rows - 1;
    rows[0][r] = Row(a.w0, n);
    if constexpr (kPair) rows[1][r] = Row(a.w1, n);
  }
  const int64_t k = a.w0.k;
  for (int64_t m0 = tile; m0 < tile_end; m0 += kMoeRowChunk) {
    const float* xr[kMoeRowChunk];
#pragma unroll
    for (int i = 0; i < kMoeRowChunk; ++i) {
      const int64_t m = begin + (m0 + i < tile_end ? m0 + i : tile_end - 1);
      const int64_t src = a.perm != nullptr ? a.perm[m] : m;
      xr[i] = a.in + src * a.ld_in;
    }
    float acc[kMoeRowChunk][kMats][kMoeLinearRows];
#pragma unroll
    for (int i = 0; i < kMoeRowChunk; ++i) {
#pragma unroll
      for (int g = 0; g < kMats; ++g) {
#pragma unroll
        for (int r = 0; r < kMoeLinearRows; ++r) acc[i][g][r] = 0.0f;
      }
    }
    for (int64_t c = static_cast<int64_t>(lane) * kMoeChunk; c < k; c += 32 * kMoeChunk) {
      float wv[kMats][kMoeLinearRows][kMoeChunk];
#pragma unroll
      for (int g = 0; g < kMats; ++g) {
#pragma unroll
        for (int r = 0; r < kMoeLinearRows; ++r) rows[g][r].Load(c, wv[g][r]);
      }
#pragma unroll
      for (int i = 0; i < kMoeRowChunk; ++i) {
#pragma unroll
        for (int j = 0; j < kMoeChunk; ++j) {
          const float xv = c + j < k ? xr[i][c + j] : 0.0f;
#pragma unroll
          for (int g = 0; g < kMats; ++g) {
#pragma unroll
            for (int r = 0; r < kMoeLinearRows; ++r) acc[i][g][r] += xv * wv[g][r][j];
          }
        }
      }
    }
#pragma unroll
    for (int i = 0; i < kMoeRowChunk; ++i) {
#pragma unroll
      for (int r = 0; r < kMoeLinearRows; ++r) {
        const float v0 = rows[0][r].Finish(WarpSum(acc[i][0][r]));
        float v1 = 0.0f;
        if constexpr (kPair) v1 = rows[1][r].Finish(WarpSum(acc[i][kMats - 1][r]));
        if (lane == 0 && m0 + i < tile_end && n0 + r < n_rows) {
          const int64_t at = (begin + m0 + i) * a.ld_out + n0 + r;
          a.out0[at] = v0;
          if constexpr (kPair) a.out1[at] = v1;
        }
      }
    }
  }
}

__global__ void __launch_bounds__(128)
    MoeCombineKernel(const float* y, int64_t hidden, const int32_t* slot_row, const float* weights,
                     int64_t top_k, float* out) {
  const int64_t t = blockIdx.x;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    float sum = 0.0f;
    for (int64_t j = 0; j < top_k; ++j) {
      const int32_t r = slot_row[t * top_k + j];
      if (r >= 0) sum = AddRn(sum, MulRn(weights[t * top_k + j], y[int64_t{r} * hidden + i]));
    }
    out[t * hidden + i] = sum;
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_MOE_EXPERTS_CUH_
