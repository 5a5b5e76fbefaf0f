// Multi-head latent attention (DeepSeek MLA) in its absorbed form over a paged latent pool, f32:
// every query head attends to the same one row per position (multi-query attention with a
// width-576 key and a 512-wide value that is part of that key).
//
// Layouts: q [T, heads, width]; cache [blocks, block_size, width] (one latent row per token
// slot, as runtime/backend's pool [blocks, block_size, 1, width]); out [T, heads, value_width].
// Sequences and positions as kernels/cpu/paged_attention.h (PagedBatch): query token i of
// sequence b (of n) sits at position seq_lens[b] - n + i and sees positions [0, that].
//   score(h, s) = scale * q[t, h, :] · row(s)
//   out[t, h, :] = sum_s softmax_s(score(h, s)) * row(s)[value_offset, value_offset + value_width)
// Softmax with max subtraction, f32 accumulation. Threads split the query tokens.
#ifndef SPARKSTACK_KERNELS_CPU_MLA_ATTENTION_H_
#define SPARKSTACK_KERNELS_CPU_MLA_ATTENTION_H_

#include <cstdint>

#include "kernels/cpu/paged_attention.h"

namespace sparkstack::kernels {

struct LatentPool {
  const float* rows = nullptr;  // [blocks, block_size, width]
  int64_t block_size = 0;
  int64_t width = 0;
  int64_t value_offset = 0;
  int64_t value_width = 0;
};

void PagedLatentAttentionF32(const float* q, int64_t tokens, int64_t heads, const LatentPool& pool,
                             const PagedBatch& batch, float scale, float* out, int threads = 1);

// The float64 reference (one position at a time, exp in double).
void PagedLatentAttentionReference(const float* q, int64_t tokens, int64_t heads,
                                   const LatentPool& pool, const PagedBatch& batch, double scale,
                                   double* out);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_MLA_ATTENTION_H_
