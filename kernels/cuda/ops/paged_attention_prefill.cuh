// Flash-style paged attention for prefill chunks on mma.sync m16n8k16 (bf16 in, f32 accumulate).
//
// Grid (prefill sequences x query tiles, heads); 128 threads = 4 warps. Block (x, h) takes query
// tile x % tiles (64 query tokens) of sequence first_seq + x / tiles and head h (kv head
// h / group); warp w owns query rows 16 w .. 16 w + 15 of the tile. Key tiles of BN keys walk
// positions [0, last visible position of the tile].
//
// Shared memory (dynamic, PrefillAttentionSmemBytes): Qs[64][DP + 8], Ks[BN][DP + 8],
// Vs[BN][DP + 8] bf16, DP = the head dimension padded to 32/64/128/256, rows padded by 8 elements
// so that ldmatrix's 8 row addresses fall in distinct banks. Elements past head_dim, past the
// sequence's tokens or past the visible keys are zeros. K and V are gathered through the block
// table and converted from the cache type on the way in (plain loads, so any cache type works).
//
// Per key tile, per warp (the FlashAttention-2 register flow):
//   S[16 x BN] = Q K^T      A = Q rows via ldmatrix; B = K rows (n = key, k = dim) via ldmatrix
//   mask (causal, tails) and scale in f32; online softmax per row (4 lanes share a row: shuffles)
//   O[16 x DP] += P V       P's accumulator fragments are exactly the A fragments of the next mma
//                           (packed to bf16); B = V via ldmatrix.trans (V rows are keys)
// The output is O / rowsum, written for the tile's real rows and the first v_head_dim columns.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_PREFILL_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_PREFILL_CUH_

#include <cstdint>

#include "kernels/cuda/ldmatrix.h"
#include "kernels/cuda/mma.h"
#include "kernels/cuda/ops/common.cuh"
#include "kernels/cuda/ops/paged_attention.h"
#include "kernels/cuda/shared_memory.h"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kPrefillBM = 64;
inline constexpr int kPrefillAttnThreads = 128;

static_assert(kPrefillBM == 64, "PrefillSmemBytesFor (paged_attention.h) assumes 64 queries");

__device__ __forceinline__ uint32_t PackBf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// 8 consecutive cache elements from p (n_valid of them real, the rest zeros), packed as bf16.
__device__ __forceinline__ uint4 LoadChunkBf16(const float* p, int n_valid, bool vec) {
  float v[8];
  if (vec && n_valid == 8) {
    const float4 lo = *reinterpret_cast<const float4*>(p);
    const float4 hi = *reinterpret_cast<const float4*>(p + 4);
    v[0] = lo.x, v[1] = lo.y, v[2] = lo.z, v[3] = lo.w;
    v[4] = hi.x, v[5] = hi.y, v[6] = hi.z, v[7] = hi.w;
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = j < n_valid ? p[j] : 0.0f;
  }
  return make_uint4(PackBf16x2(v[0], v[1]), PackBf16x2(v[2], v[3]), PackBf16x2(v[4], v[5]),
                    PackBf16x2(v[6], v[7]));
}
__device__ __forceinline__ uint4 LoadChunkBf16(const __nv_bfloat16* p, int n_valid, bool vec) {
  if (vec && n_valid == 8) return *reinterpret_cast<const uint4*>(p);
  uint16_t e[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) e[j] = j < n_valid ? *reinterpret_cast<const uint16_t*>(p + j) : 0;
  return make_uint4(e[0] | (uint32_t{e[1]} << 16), e[2] | (uint32_t{e[3]} << 16),
                    e[4] | (uint32_t{e[5]} << 16), e[6] | (uint32_t{e[7]} << 16));
}

template <typename C, int DP>
__global__ void __launch_bounds__(kPrefillAttnThreads)
    PagedPrefillKernel(PagedAttentionArgs a, int64_t first_seq, int64_t q_tiles) {
  constexpr int BN = PrefillKeysPerTile(DP);
  constexpr int ROW = DP + 8;
  constexpr int NT = BN / 8;  // score n-tiles per warp row block
  constexpr int DT = DP / 8;  // output n-tiles
  constexpr int CHUNKS = DP / 8;
  static_assert(DP % 32 == 0 && BN % 16 == 0 && DT % 2 == 0);

  const int64_t b = first_seq + blockIdx.x / q_tiles;
  const int64_t tile = blockIdx.x % q_tiles;
  const int64_t q0 = a.query_start[b];
  const int64_t n = a.query_start[b + 1] - q0;
  if (tile * kPrefillBM >= n) return;  // the whole block
  const int64_t len = a.seq_lens[b];
  const int64_t h = blockIdx.y;
  const int64_t kvh = h / (a.heads / a.kv_heads);
  const int64_t rows = n - tile * kPrefillBM < kPrefillBM ? n - tile * kPrefillBM : kPrefillBM;
  const int64_t first_pos = len - n + tile * kPrefillBM;  // position of the tile's row 0
  const int64_t last_key = first_pos + rows - 1;

  auto* qs = cuda::DynamicSharedMemory<__nv_bfloat16>();
  auto* ks = qs + kPrefillBM * ROW;
  auto* vs = ks + BN * ROW;
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int64_t d = a.head_dim;
  const int64_t dv = a.v_head_dim;

  // Q tile, bf16, zero rows past the sequence's tokens and zero dims past head_dim.
  const bool q_vec = d % 8 == 0;
  for (int c = tid; c < kPrefillBM * CHUNKS; c += kPrefillAttnThreads) {
    const int r = c / CHUNKS;
    const int d0 = (c % CHUNKS) * 8;
    int valid = r < rows && d0 < d ? static_cast<int>(d - d0 < 8 ? d - d0 : 8) : 0;
    const float* src = a.q + ((q0 + tile * kPrefillBM + (r < rows ? r : 0)) * a.heads + h) * d +
                       (d0 < d ? d0 : 0);
    *reinterpret_cast<uint4*>(qs + r * ROW + d0) = LoadChunkBf16(src, valid, q_vec);
  }

  const C* kc = static_cast<const C*>(a.k_cache);
  const C* vc = static_cast<const C*>(a.v_cache);
  const int32_t* table = a.block_table + b * a.max_blocks;
  const int64_t k_row = a.kv_heads * d;
  const int64_t v_row = a.kv_heads * dv;
  const bool k_vec = d % 8 == 0;
  const bool v_vec = dv % 8 == 0;

  const int g = lane >> 2;
  const int t = lane & 3;
  float o[DT][4];
#pragma unroll
  for (int j = 0; j < DT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o[j][e] = 0.0f;
  }
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};
  // Positions of this lane's two query rows (g and g + 8 of the warp's 16).
  int64_t row_pos[2];
  bool row_real[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t local = warp * 16 + g + r * 8;
    row_real[r] = local < rows;
    row_pos[r] = first_pos + local;
  }

  for (int64_t j0 = 0; j0 <= last_key; j0 += BN) {
    for (int c = tid; c < BN * CHUNKS; c += kPrefillAttnThreads) {
      const int r = c / CHUNKS;
      const int d0 = (c % CHUNKS) * 8;
      const int64_t key = j0 + r;
      const bool key_ok = key <= last_key;
      const int64_t slot =
          key_ok ? static_cast<int64_t>(table[key / a.block_size]) * a.block_size +
                       key % a.block_size
                 : 0;
      const int kv = key_ok && d0 < d ? static_cast<int>(d - d0 < 8 ? d - d0 : 8) : 0;
      const int vv = key_ok && d0 < dv ? static_cast<int>(dv - d0 < 8 ? dv - d0 : 8) : 0;
      *reinterpret_cast<uint4*>(ks + r * ROW + d0) =
          LoadChunkBf16(kc + slot * k_row + kvh * d + (d0 < d ? d0 : 0), kv, k_vec);
      *reinterpret_cast<uint4*>(vs + r * ROW + d0) =
          LoadChunkBf16(vc + slot * v_row + kvh * dv + (d0 < dv ? d0 : 0), vv, v_vec);
    }
    __syncthreads();  // Q (first pass), K and V of this tile are in shared memory

    float s[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < DP / 16; ++kk) {
      uint32_t af[4];
      cuda::LdMatrix<4>(af, qs + (warp * 16 + (lane & 15)) * ROW + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int j = 0; j < NT; j += 2) {
        const int q = lane >> 3;
        uint32_t r[4];
        cuda::LdMatrix<4>(r, ks + ((j + (q >> 1)) * 8 + (lane & 7)) * ROW + kk * 16 + (q & 1) * 8);
        const uint32_t b0[2] = {r[0], r[1]};
        const uint32_t b1[2] = {r[2], r[3]};
        cuda::MmaM16N8K16Bf16(s[j], af, b0);
        cuda::MmaM16N8K16Bf16(s[j + 1], af, b1);
      }
    }

    // Mask, scale, online softmax. Element e of tile j: row g + (e >> 1) * 8, key j0 + 8 j +
    // 2 t + (e & 1).
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const int64_t key = j0 + 8 * j + 2 * t + (e & 1);
        const bool ok = row_real[r] && key <= row_pos[r];
        s[j][e] = ok ? s[j][e] * a.scale : -INFINITY;
        tile_max[r] = fmaxf(tile_max[r], s[j][e]);
      }
    }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(kFullMask, tile_max[r], 1));
      tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(kFullMask, tile_max[r], 2));
      const float new_max = fmaxf(row_max[r], tile_max[r]);
      alpha[r] = row_max[r] == -INFINITY ? 0.0f : expf(row_max[r] - new_max);
      row_max[r] = new_max;
      row_sum[r] *= alpha[r];
    }
#pragma unroll
    for (int j = 0; j < DT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[j][e] *= alpha[e >> 1];
    }
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const float p = s[j][e] == -INFINITY ? 0.0f : expf(s[j][e] - row_max[r]);
        s[j][e] = p;
        row_sum[r] += p;
      }
    }

    // O += P V over the tile's BN keys, 16 at a time.
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      const uint32_t pa[4] = {PackBf16x2(s[2 * kk][0], s[2 * kk][1]),
                              PackBf16x2(s[2 * kk][2], s[2 * kk][3]),
                              PackBf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              PackBf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int j = 0; j < DT; j += 2) {
        const int q = lane >> 3;
        uint32_t r[4];
        cuda::LdMatrix<4, true>(r, vs + (kk * 16 + (q & 1) * 8 + (lane & 7)) * ROW +
                                       (j + (q >> 1)) * 8);
        const uint32_t b0[2] = {r[0], r[1]};
        const uint32_t b1[2] = {r[2], r[3]};
        cuda::MmaM16N8K16Bf16(o[j], pa, b0);
        cuda::MmaM16N8K16Bf16(o[j + 1], pa, b1);
      }
    }
    cuda::ReleaseSharedAtNextBarrier(ks, sizeof(__nv_bfloat16) * BN * ROW);
    cuda::ReleaseSharedAtNextBarrier(vs, sizeof(__nv_bfloat16) * BN * ROW);
    __syncthreads();  // every warp is done with K and V before the next tile overwrites them
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row_sum[r] += __shfl_xor_sync(kFullMask, row_sum[r], 1);
    row_sum[r] += __shfl_xor_sync(kFullMask, row_sum[r], 2);
  }
#pragma unroll
  for (int j = 0; j < DT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = e >> 1;
      const int64_t col = 8 * j + 2 * t + (e & 1);
      if (!row_real[r] || col >= dv) continue;
      const int64_t token = q0 + tile * kPrefillBM + warp * 16 + g + r * 8;
      a.out[(token * a.heads + h) * dv + col] = o[j][e] / row_sum[r];
    }
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_PREFILL_CUH_
