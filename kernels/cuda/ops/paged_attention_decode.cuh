// Paged attention for decode tokens, split over long contexts.
//
// Grid (num_decodes, kv_heads * subgroups, splits); 128 threads = 4 warps. Block (b, y, s) serves
// query heads [h0, h0 + gcount) (at most kDecodeHeadsPerBlock of kv head y / subgroups, so a GQA
// group shares every key and value it loads) over keys [s * S, min((s + 1) * S, L)) of sequence b,
// S = DecodeSplitLength(L). Blocks with s >= DecodeSplits(L) exit.
//
// Warp w takes chunks w, w + 4, ... of 32 keys. Scores: lane l computes the dot products of key
// (chunk + l) with every head's query (queries in shared memory, read as broadcasts; the key row
// read once). Online softmax per head: the warp's running max m, per-lane sums l, and per-lane
// accumulators for value dims l + 32 j; for the values, the warp walks the chunk's keys, each
// key's probability broadcast by a shuffle and its value row read coalesced. At the end the four
// warps merge through shared memory; a single split writes the output, several write
// (max, sum, accumulator) partials that PagedDecodeCombineKernel merges.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_DECODE_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_DECODE_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"
#include "kernels/cuda/ops/paged_attention.h"
#include "kernels/cuda/shared_memory.h"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kDecodeWarps = 4;
inline constexpr int kDecodeThreads = kDecodeWarps * 32;
inline constexpr int kGroup = static_cast<int>(kDecodeHeadsPerBlock);

__device__ __forceinline__ float CacheValue(const float* p) { return *p; }
__device__ __forceinline__ float CacheValue(const __nv_bfloat16* p) { return __bfloat162float(*p); }

// Layout of the split partials in scratch: for decode token t, head h, split s:
// stats [t][h][s] = (max, sum) pairs, then values [t][h][s][v_head_dim].
struct DecodePartials {
  float* stats;
  float* values;
};

__device__ __forceinline__ DecodePartials PartialsOf(float* scratch, int64_t num_decodes,
                                                     int64_t heads, int64_t splits) {
  return {scratch, scratch + num_decodes * heads * splits * 2};
}

// DPL: value dims per lane (v_head_dim <= 32 * DPL).
template <typename C, int DPL>
__global__ void __launch_bounds__(kDecodeThreads, 1)
    PagedDecodeKernel(PagedAttentionArgs a, int64_t num_decodes, int64_t grid_splits,
                      int64_t subgroups, float* scratch) {
  constexpr int kMaxDim = 32 * DPL;
  SPARKSTACK_SHARED_ARRAY(float, q_s, kGroup * kMaxDim);
  SPARKSTACK_SHARED_ARRAY(float, m_s, kDecodeWarps * kGroup);
  SPARKSTACK_SHARED_ARRAY(float, l_s, kDecodeWarps * kGroup);
  SPARKSTACK_SHARED_ARRAY(float, acc_s, kDecodeWarps * kGroup * kMaxDim);

  const int64_t b = blockIdx.x;
  const int64_t kvh = blockIdx.y / subgroups;
  const int64_t sub = blockIdx.y % subgroups;
  const int64_t split = blockIdx.z;
  const int64_t len = a.seq_lens[b];
  const int64_t split_len = DecodeSplitLength(len);
  const int64_t splits = DecodeSplits(len);
  if (split >= splits) return;  // the whole block: no barrier is skipped by part of it
  const int64_t group = a.heads / a.kv_heads;
  const int64_t h0 = kvh * group + sub * kGroup;
  const int gcount = static_cast<int>(group - sub * kGroup < kGroup ? group - sub * kGroup : kGroup);
  const int64_t token = a.query_start[b];
  const int64_t begin = split * split_len;
  const int64_t end = begin + split_len < len ? begin + split_len : len;
  const int64_t d = a.head_dim;
  const int64_t dv = a.v_head_dim;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;

  for (int64_t i = threadIdx.x; i < gcount * d; i += blockDim.x) {
    q_s[(i / d) * kMaxDim + i % d] = a.q[(token * a.heads + h0 + i / d) * d + i % d];
  }
  __syncthreads();

  const C* kc = static_cast<const C*>(a.k_cache);
  const C* vc = static_cast<const C*>(a.v_cache);
  const int32_t* table = a.block_table + b * a.max_blocks;
  const int64_t k_row = a.kv_heads * d;
  const int64_t v_row = a.kv_heads * dv;

  float m[kGroup], l[kGroup], acc[kGroup][DPL];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int j = 0; j < DPL; ++j) acc[g][j] = 0.0f;
  }

  for (int64_t chunk = begin + warp * 32; chunk < end; chunk += kDecodeWarps * 32) {
    const int64_t key = chunk + lane;
    const bool valid = key < end;
    int64_t slot = 0;
    float s[kGroup];
#pragma unroll
    for (int g = 0; g < kGroup; ++g) s[g] = 0.0f;
    if (valid) {
      slot = static_cast<int64_t>(table[key / a.block_size]) * a.block_size + key % a.block_size;
      const C* krow = kc + slot * k_row + kvh * d;
      for (int64_t e = 0; e < d; ++e) {
        const float kv = CacheValue(krow + e);
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
          if (g < gcount) s[g] += q_s[g * kMaxDim + e] * kv;
        }
      }
    }
    float p[kGroup];
#pragma unroll
    for (int g = 0; g < kGroup; ++g) {
      if (g >= gcount) continue;  // uniform over the warp
      const float score = valid ? s[g] * a.scale : -INFINITY;
      const float new_m = fmaxf(m[g], WarpMax(score));
      const float alpha = m[g] == -INFINITY ? 0.0f : expf(m[g] - new_m);
      l[g] *= alpha;
#pragma unroll
      for (int j = 0; j < DPL; ++j) acc[g][j] *= alpha;
      p[g] = valid ? expf(score - new_m) : 0.0f;
      l[g] += p[g];
      m[g] = new_m;
    }
    const int count = static_cast<int>(end - chunk < 32 ? end - chunk : 32);
    for (int i = 0; i < count; ++i) {
      const int64_t slot_i = __shfl_sync(kFullMask, slot, i);
      const C* vrow = vc + slot_i * v_row + kvh * dv;
      float v[DPL];
#pragma unroll
      for (int j = 0; j < DPL; ++j) {
        const int64_t e = lane + 32 * j;
        v[j] = e < dv ? CacheValue(vrow + e) : 0.0f;
      }
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        if (g >= gcount) continue;
        const float pi = __shfl_sync(kFullMask, p[g], i);
#pragma unroll
        for (int j = 0; j < DPL; ++j) acc[g][j] += pi * v[j];
      }
    }
  }

  // Merge the warps: each publishes (m, sum, acc) per head.
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    if (g >= gcount) continue;
    const float sum = WarpSum(l[g]);
    if (lane == 0) {
      m_s[warp * kGroup + g] = m[g];
      l_s[warp * kGroup + g] = sum;
    }
#pragma unroll
    for (int j = 0; j < DPL; ++j) acc_s[(warp * kGroup + g) * kMaxDim + lane + 32 * j] = acc[g][j];
  }
  __syncthreads();
  const bool single = splits == 1;
  const DecodePartials parts = PartialsOf(scratch, num_decodes, a.heads, grid_splits);
  for (int64_t i = threadIdx.x; i < gcount * dv; i += blockDim.x) {
    const int g = static_cast<int>(i / dv);
    const int64_t e = i % dv;
    float mx = -INFINITY;
    for (int w = 0; w < kDecodeWarps; ++w) mx = fmaxf(mx, m_s[w * kGroup + g]);
    float sum = 0.0f, value = 0.0f;
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float mw = m_s[w * kGroup + g];
      const float f = mw == -INFINITY ? 0.0f : expf(mw - mx);
      sum += f * l_s[w * kGroup + g];
      value += f * acc_s[(w * kGroup + g) * kMaxDim + e];
    }
    const int64_t h = h0 + g;
    if (single) {
      a.out[(token * a.heads + h) * dv + e] = value / sum;
    } else {
      const int64_t at = (b * a.heads + h) * grid_splits + split;
      parts.values[at * dv + e] = value;
      if (e == 0) {
        parts.stats[2 * at] = mx;
        parts.stats[2 * at + 1] = sum;
      }
    }
  }
}

// Grid (num_decodes, heads), 128 threads over the value dims: merges the splits of a sequence
// that has more than one (single-split sequences were written by the first kernel).
__global__ void __launch_bounds__(kDecodeThreads)
    PagedDecodeCombineKernel(PagedAttentionArgs a, int64_t num_decodes, int64_t grid_splits,
                             const float* scratch) {
  const int64_t b = blockIdx.x;
  const int64_t h = blockIdx.y;
  const int64_t splits = DecodeSplits(a.seq_lens[b]);
  if (splits <= 1) return;
  const DecodePartials parts =
      PartialsOf(const_cast<float*>(scratch), num_decodes, a.heads, grid_splits);
  const int64_t base = (b * a.heads + h) * grid_splits;
  float mx = -INFINITY;
  for (int64_t s = 0; s < splits; ++s) mx = fmaxf(mx, parts.stats[2 * (base + s)]);
  const int64_t token = a.query_start[b];
  const int64_t dv = a.v_head_dim;
  for (int64_t e = threadIdx.x; e < dv; e += blockDim.x) {
    float sum = 0.0f, value = 0.0f;
    for (int64_t s = 0; s < splits; ++s) {
      const float f = expf(parts.stats[2 * (base + s)] - mx);
      sum += f * parts.stats[2 * (base + s) + 1];
      value += f * parts.values[(base + s) * dv + e];
    }
    a.out[(token * a.heads + h) * dv + e] = value / sum;
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_DECODE_CUH_
