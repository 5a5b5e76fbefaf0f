// Float64 reference of the paged attention launchers (paged_attention.h) and of StoreKv
// (store_kv.h): the cache as per-slot rows of doubles.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_REFERENCE_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_REFERENCE_H_

#include <cstdint>
#include <vector>

namespace sparkstack::kernels::cuda_ops {

struct ReferenceKv {
  std::vector<double> k;  // [slots, kv_heads, head_dim]
  std::vector<double> v;  // [slots, kv_heads, v_head_dim]
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t v_head_dim = 0;
  int64_t block_size = 0;
};

// Writes k [tokens, kv_heads, head_dim] and v into the slots of slot_mapping (negative: skipped).
void ReferenceStoreKv(const std::vector<double>& k, const std::vector<double>& v,
                      const std::vector<int32_t>& slot_mapping, ReferenceKv& kv);

// out [T, heads, v_head_dim] of q [T, heads, head_dim] for every sequence of the batch.
std::vector<double> ReferencePagedAttention(const std::vector<double>& q, int64_t heads,
                                            const ReferenceKv& kv,
                                            const std::vector<int32_t>& query_start,
                                            const std::vector<int32_t>& seq_lens,
                                            const std::vector<int32_t>& block_table,
                                            int64_t max_blocks, double scale);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_REFERENCE_H_
