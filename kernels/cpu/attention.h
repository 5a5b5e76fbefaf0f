// Causal grouped-query attention over a contiguous KV cache, f32.
#ifndef SPARKSTACK_KERNELS_CPU_ATTENTION_H_
#define SPARKSTACK_KERNELS_CPU_ATTENTION_H_

#include <cstdint>

namespace sparkstack::kernels {

// q, out: [tokens, heads, head_dim]; caches: [capacity, kv_heads, head_dim]. Query token t sits at
// position start + t and attends to cache rows [0, start + t]. Softmax with max subtraction and
// f32 accumulation; query head h reads kv head h / (heads / kv_heads).
void CausalAttentionF32(const float* q, int64_t tokens, int64_t heads, int64_t kv_heads,
                        int64_t head_dim, const float* k_cache, const float* v_cache,
                        int64_t start, float scale, float* out);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_ATTENTION_H_
