// Causal grouped-query attention over a paged KV cache, f32 (the layout of
// runtime/backend/attention_metadata.h).
#ifndef SPARKSTACK_KERNELS_CPU_PAGED_ATTENTION_H_
#define SPARKSTACK_KERNELS_CPU_PAGED_ATTENTION_H_

#include <cstdint>

namespace sparkstack::kernels {

struct PagedKv {
  const float* k = nullptr;  // [blocks, block_size, kv_heads, head_dim]
  const float* v = nullptr;  // [blocks, block_size, kv_heads, v_head_dim]
  int64_t block_size = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t v_head_dim = 0;
};

struct PagedBatch {
  int64_t num_seqs = 0;
  const int32_t* query_start = nullptr;  // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;     // [num_seqs]
  const int32_t* block_table = nullptr;  // [num_seqs, max_blocks]
  int64_t max_blocks = 0;
};

// q [T, heads, head_dim] -> out [T, heads, v_head_dim]. The query token i of sequence b (of n)
// sits at position seq_lens[b] - n + i and sees positions [0, that]. Softmax with max subtraction,
// f32 accumulation.
void PagedAttentionF32(const float* q, int64_t heads, const PagedKv& kv, const PagedBatch& batch,
                       float scale, float* out);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_PAGED_ATTENTION_H_
