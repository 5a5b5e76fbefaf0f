#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/dense_linear.h"

namespace sparkstack::kernels {

void PagedAttentionF32(const float* q, int64_t heads, const PagedKv& kv, const PagedBatch& batch,
                       float scale, float* out) {
  const int64_t group = heads / kv.kv_heads;
  const int64_t token_stride = kv.kv_heads * kv.head_dim;
  const int64_t v_token_stride = kv.kv_heads * kv.v_head_dim;
  std::vector<float> scores;
  for (int64_t b = 0; b < batch.num_seqs; ++b) {
    const int64_t first = batch.query_start[b];
    const int64_t n = batch.query_start[b + 1] - first;
    const int64_t len = batch.seq_lens[b];
    const int32_t* table = batch.block_table + b * batch.max_blocks;
    scores.resize(len);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t visible = len - n + i + 1;
      for (int64_t h = 0; h < heads; ++h) {
        const float* qh = q + ((first + i) * heads + h) * kv.head_dim;
        const int64_t kvh = h / group;
        float max_score = -INFINITY;
        for (int64_t p = 0; p < visible; ++p) {
          const int64_t slot = int64_t{table[p / kv.block_size]} * kv.block_size + p % kv.block_size;
          scores[p] = DotF32(qh, kv.k + slot * token_stride + kvh * kv.head_dim, kv.head_dim) * scale;
          max_score = std::max(max_score, scores[p]);
        }
        float denom = 0.0f;
        for (int64_t p = 0; p < visible; ++p) {
          scores[p] = std::exp(scores[p] - max_score);
          denom += scores[p];
        }
        float* o = out + ((first + i) * heads + h) * kv.v_head_dim;
        std::fill(o, o + kv.v_head_dim, 0.0f);
        for (int64_t p = 0; p < visible; ++p) {
          const int64_t slot = int64_t{table[p / kv.block_size]} * kv.block_size + p % kv.block_size;
          const float weight = scores[p] / denom;
          const float* v = kv.v + slot * v_token_stride + kvh * kv.v_head_dim;
          for (int64_t d = 0; d < kv.v_head_dim; ++d) o[d] += weight * v[d];
        }
      }
    }
  }
}

}  // namespace sparkstack::kernels
