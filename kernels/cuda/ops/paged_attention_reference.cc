#include "kernels/cuda/ops/paged_attention_reference.h"

#include <algorithm>
#include <cmath>

namespace sparkstack::kernels::cuda_ops {

void ReferenceStoreKv(const std::vector<double>& k, const std::vector<double>& v,
                      const std::vector<int32_t>& slot_mapping, ReferenceKv& kv) {
  const int64_t k_row = kv.kv_heads * kv.head_dim;
  const int64_t v_row = kv.kv_heads * kv.v_head_dim;
  for (size_t t = 0; t < slot_mapping.size(); ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    std::copy_n(k.begin() + t * k_row, k_row, kv.k.begin() + slot * k_row);
    std::copy_n(v.begin() + t * v_row, v_row, kv.v.begin() + slot * v_row);
  }
}

std::vector<double> ReferencePagedAttention(const std::vector<double>& q, int64_t heads,
                                            const ReferenceKv& kv,
                                            const std::vector<int32_t>& query_start,
                                            const std::vector<int32_t>& seq_lens,
                                            const std::vector<int32_t>& block_table,
                                            int64_t max_blocks, double scale) {
  const int64_t tokens = query_start.back();
  const int64_t group = heads / kv.kv_heads;
  std::vector<double> out(tokens * heads * kv.v_head_dim, 0.0);
  for (size_t b = 0; b + 1 < query_start.size(); ++b) {
    const int64_t n = query_start[b + 1] - query_start[b];
    const int64_t len = seq_lens[b];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t token = query_start[b] + i;
      const int64_t visible = len - n + i + 1;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t kvh = h / group;
        std::vector<double> score(visible);
        double max_score = -INFINITY;
        for (int64_t p = 0; p < visible; ++p) {
          const int64_t slot = int64_t{block_table[b * max_blocks + p / kv.block_size]} *
                                   kv.block_size +
                               p % kv.block_size;
          double dot = 0.0;
          for (int64_t e = 0; e < kv.head_dim; ++e) {
            dot += q[(token * heads + h) * kv.head_dim + e] *
                   kv.k[(slot * kv.kv_heads + kvh) * kv.head_dim + e];
          }
          score[p] = dot * scale;
          max_score = std::max(max_score, score[p]);
        }
        double sum = 0.0;
        for (double& s : score) sum += (s = std::exp(s - max_score));
        for (int64_t p = 0; p < visible; ++p) {
          const int64_t slot = int64_t{block_table[b * max_blocks + p / kv.block_size]} *
                                   kv.block_size +
                               p % kv.block_size;
          for (int64_t e = 0; e < kv.v_head_dim; ++e) {
            out[(token * heads + h) * kv.v_head_dim + e] +=
                score[p] / sum * kv.v[(slot * kv.kv_heads + kvh) * kv.v_head_dim + e];
          }
        }
      }
    }
  }
  return out;
}

}  // namespace sparkstack::kernels::cuda_ops
