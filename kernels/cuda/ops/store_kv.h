// Writes a step's keys and values into the paged KV pools by slot (Backend::StoreKv):
// k_cache[slot_mapping[t]] = k[t], v_cache[slot_mapping[t]] = v[t]; a negative slot skips token t.
// A slot is a row of the pool: [blocks * block_size, row] with row = kv_heads * head_dim
// (k) or kv_heads * v_head_dim (v).
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_STORE_KV_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_STORE_KV_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

// k f32 [tokens, k_row], v f32 [tokens, v_row]; caches of `cache_type` (f32 or bf16, rounded to
// nearest even). Slots are trusted (< the pool's slots). v may be null when v_row is 0 (a single
// latent pool).
int LaunchStoreKv(const float* k, const float* v, int64_t tokens, int64_t k_row, int64_t v_row,
                  const int32_t* slot_mapping, void* k_cache, void* v_cache, ElemType cache_type,
                  void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_STORE_KV_H_
