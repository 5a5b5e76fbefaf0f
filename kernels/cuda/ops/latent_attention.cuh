// Paged latent attention kernel (latent_attention.h).
//
// Grid (tokens, ceil(heads / 16)); 128 threads. Block (t, y) serves query token t and heads
// [16 y, 16 y + gcount). It finds t's sequence and position, stages the heads' query rows in
// shared memory, then walks the visible rows [0, position] in tiles of 16:
//   1. the 128 threads copy the tile's rows (gathered through the block table) into shared memory,
//      one coalesced pass for all heads;
//   2. thread (head pair g, g + 8; key k = tid % 16) computes the two scores q_g . row_k and
//      q_{g+8} . row_k; the 16 lanes of a half warp hold one head's 16 keys, so the tile max and
//      sum are half-warp shuffles. Online softmax: each thread keeps its heads' running max and
//      sum in registers and publishes the probabilities p[g][k] and the rescale factor of the
//      running output;
//   3. thread i owns value columns i, i + 128, ... (< value_width <= 512) of every head and
//      accumulates acc[g] = acc[g] * alpha[g] + sum_k p[g][k] * row_k[value_offset + column].
// The output is acc / sum. Tiles past the visible rows are never loaded (loops stop at the
// tile's count), so stale shared memory is never read.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_LATENT_ATTENTION_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_LATENT_ATTENTION_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"
#include "kernels/cuda/ops/latent_attention.h"
#include "kernels/cuda/shared_memory.h"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kLatentHeads = static_cast<int>(kLatentHeadsPerBlock);
inline constexpr int kLatentKeys = static_cast<int>(kLatentKeysPerTile);
// Query and row tiles are padded by one float: the 16 rows (or the two heads of a warp) read at
// one column fall in distinct banks.
inline constexpr int kLatentStride = static_cast<int>(kLatentMaxWidth) + 1;
inline constexpr int kLatentColumnsPerThread =
    static_cast<int>(kLatentMaxValueWidth) / kLatentThreads;
static_assert(kLatentThreads == 8 * kLatentKeys && kLatentHeads == 16,
              "a thread scores heads g and g + 8 for key tid % 16");
static_assert(kLatentColumnsPerThread * kLatentThreads == kLatentMaxValueWidth);

// Max and sum over the 16 lanes of a half warp (xor offsets below 16 stay in the half).
__device__ __forceinline__ float HalfWarpMax(float v) {
#pragma unroll
  for (int offset = 8; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}
__device__ __forceinline__ float HalfWarpSum(float v) {
#pragma unroll
  for (int offset = 8; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__global__ void __launch_bounds__(kLatentThreads, 1)
    PagedLatentAttentionKernel(LatentAttentionArgs a) {
  float* q_s = cuda::DynamicSharedMemory<float>();    // [16][577]
  float* row_s = q_s + kLatentHeads * kLatentStride;  // [16][577]
  float* p_s = row_s + kLatentKeys * kLatentStride;   // [16 heads][16 keys]
  float* alpha_s = p_s + kLatentHeads * kLatentKeys;  // [16]
  float* sum_s = alpha_s + kLatentHeads;              // [16]

  const int64_t t = blockIdx.x;
  const int64_t h0 = static_cast<int64_t>(blockIdx.y) * kLatentHeads;
  const int gcount = static_cast<int>(a.heads - h0 < kLatentHeads ? a.heads - h0 : kLatentHeads);
  // The token's sequence: the last b with query_start[b] <= t (binary search).
  int64_t lo = 0, hi = a.num_seqs - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (a.query_start[mid] <= t) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const int64_t b = lo;
  const int64_t queries = a.query_start[b + 1] - a.query_start[b];
  const int64_t length = a.seq_lens[b] - queries + (t - a.query_start[b]) + 1;  // visible rows
  const int32_t* table = a.block_table + b * a.max_blocks;
  const int64_t width = a.width;
  const int64_t dv = a.value_width;

  for (int64_t i = threadIdx.x; i < gcount * width; i += blockDim.x) {
    q_s[(i / width) * kLatentStride + i % width] = a.q[(t * a.heads + h0) * width + i];
  }

  const int k = static_cast<int>(threadIdx.x) % kLatentKeys;
  const int g_lo = static_cast<int>(threadIdx.x) / kLatentKeys;  // 0..7; also g_lo + 8
  float m[2] = {-INFINITY, -INFINITY};
  float l[2] = {0.0f, 0.0f};
  float acc[kLatentHeads][kLatentColumnsPerThread];
#pragma unroll
  for (int g = 0; g < kLatentHeads; ++g) {
#pragma unroll
    for (int j = 0; j < kLatentColumnsPerThread; ++j) acc[g][j] = 0.0f;
  }

  for (int64_t first = 0; first < length; first += kLatentKeys) {
    const int count = static_cast<int>(length - first < kLatentKeys ? length - first : kLatentKeys);
    for (int64_t i = threadIdx.x; i < count * width; i += blockDim.x) {
      const int64_t key = first + i / width;
      const int64_t slot =
          static_cast<int64_t>(table[key / a.block_size]) * a.block_size + key % a.block_size;
      row_s[(i / width) * kLatentStride + i % width] = a.cache[slot * width + i % width];
    }
    __syncthreads();

    // Every lane runs the shuffles (heads past gcount take part with empty scores).
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int g = g_lo + 8 * half;
      const bool scored = g < gcount && k < count;
      float score = -INFINITY;
      if (scored) {
        const float* qg = q_s + g * kLatentStride;
        const float* row = row_s + k * kLatentStride;
        float dot = 0.0f;
        for (int64_t e = 0; e < width; ++e) dot += qg[e] * row[e];
        score = dot * a.scale;
      }
      // For a real head new_m is finite: key `first` is visible.
      const float new_m = fmaxf(m[half], HalfWarpMax(score));
      const float alpha = m[half] == -INFINITY ? 0.0f : expf(m[half] - new_m);
      const float p = scored ? expf(score - new_m) : 0.0f;
      l[half] = l[half] * alpha + HalfWarpSum(p);
      m[half] = new_m;
      if (g < gcount) {
        p_s[g * kLatentKeys + k] = p;
        if (k == 0) alpha_s[g] = alpha;
      }
    }
    __syncthreads();

#pragma unroll
    for (int j = 0; j < kLatentColumnsPerThread; ++j) {
      const int64_t e = threadIdx.x + static_cast<int64_t>(kLatentThreads) * j;
      if (e >= dv) break;
      float v[kLatentKeys];
#pragma unroll
      for (int kk = 0; kk < kLatentKeys; ++kk) {
        v[kk] = kk < count ? row_s[kk * kLatentStride + a.value_offset + e] : 0.0f;
      }
#pragma unroll
      for (int g = 0; g < kLatentHeads; ++g) {
        if (g >= gcount) continue;
        float sum = acc[g][j] * alpha_s[g];
#pragma unroll
        for (int kk = 0; kk < kLatentKeys; ++kk) {
          if (kk < count) sum += p_s[g * kLatentKeys + kk] * v[kk];
        }
        acc[g][j] = sum;
      }
    }
    __syncthreads();  // the next tile overwrites row_s, p_s and alpha_s
  }

#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int g = g_lo + 8 * half;
    if (k == 0 && g < gcount) sum_s[g] = l[half];
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < kLatentColumnsPerThread; ++j) {
    const int64_t e = threadIdx.x + static_cast<int64_t>(kLatentThreads) * j;
    if (e >= dv) break;
#pragma unroll
    for (int g = 0; g < kLatentHeads; ++g) {
      if (g >= gcount) continue;
      a.out[(t * a.heads + h0 + g) * dv + e] = acc[g][j] / sum_s[g];
    }
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_LATENT_ATTENTION_CUH_
